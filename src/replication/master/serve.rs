//! What a master data node serves slave data nodes: the task data of a write it coordinated
//! (`do_get` of a [`TASK_DATA`] ticket: the rows of `<tid>.task`), the list of the data files a
//! transaction wrote here ([`TASK_FILES`]) or a table holds here at a seed's cut
//! ([`SEED_FILES`]), the digests of a table's partitions (`dn.digest`, for the consistency
//! check), and the bytes of one of them (`do_get` of a [`FILE`] ticket; a seed's at
//! most at `clusterReplicationSeedRateMB`). These are the only calls a slave cluster's node may
//! make of a data node.

use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::FlightData;
use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::task_data;
use crate::datanode::DataNode;
use crate::replication::digest::{digest_files, DigestRequest, Digests, DIGEST};
use crate::replication::protocol::{
    columns, FileTicket, SeedFilesRequest, ShippedFile, TaskDataTicket, TaskFiles,
    TaskFilesRequest, FILE, MISSING_SQLSTATE, PENDING_SQLSTATE, SEED_FILES, TASK_DATA, TASK_FILES,
};
use crate::rpc::server::{
    reply, stream_error, stream_status, to_status, Call, Caller, FlightStream, Service,
};
use crate::rpc::tls::Peer;
use crate::rpc::{decode, decode_ticket, RemoteError, RpcError};
use crate::sqlstate::SqlState;
use crate::storage::StorageError;

/// Bytes per Flight message of a file.
const CHUNK: usize = 1 << 20;

/// The master side of replication on a data node.
pub struct MasterDataService {
    node: Arc<DataNode>,
    seed_throttle: Arc<Throttle>,
}

/// Spreads the bytes sent at most at `rate` per second (0: unlimited) over every stream that
/// takes from it.
struct Throttle {
    rate: u64,
    next: std::sync::Mutex<tokio::time::Instant>,
}

impl Throttle {
    /// Waits for the turn of `bytes`.
    async fn take(&self, bytes: usize) {
        if self.rate == 0 {
            return;
        }
        let start = {
            let mut next = crate::lock(&self.next);
            let start = (*next).max(tokio::time::Instant::now());
            *next = start + std::time::Duration::from_secs_f64(bytes as f64 / self.rate as f64);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

impl MasterDataService {
    pub fn new(node: Arc<DataNode>) -> Self {
        let seed_throttle = Arc::new(Throttle {
            rate: node.options().seed_rate,
            next: std::sync::Mutex::new(tokio::time::Instant::now()),
        });
        MasterDataService {
            node,
            seed_throttle,
        }
    }

    /// Fails (S01044, retryable) while a transaction committed at or before `at` is not
    /// published on this node yet.
    fn published_through(
        &self,
        metadata: &crate::controller::client::MetadataView,
        at: u64,
    ) -> Result<(), RemoteError> {
        let unpublished = self.node.index().prepared_tids().into_iter().any(|tid| {
            metadata
                .txn(tid)
                .is_some_and(|t| t.committed_at != 0 && t.committed_at <= at)
        });
        if unpublished {
            return Err(RemoteError::retryable(
                PENDING_SQLSTATE,
                format!("transactions committed up to index {at} are not published here yet"),
            ));
        }
        Ok(())
    }

    /// `dn.digest`: the digests of a table's partitions held here, as visible at `at`
    /// ([`crate::replication::digest`]).
    ///
    /// A slave may ask only of a database replicated to it, at a point of its replication
    /// (`after_task`): nothing of the master's other databases.
    async fn digest(&self, caller: &Caller, req: &DigestRequest) -> Result<Digests, RemoteError> {
        let metadata = self
            .node
            .wait_applied(req.at)
            .await
            .map_err(|e| RemoteError::retryable(SqlState::CONNECTION_FAILURE, e.to_string()))?;
        let replicated = metadata
            .database(&req.db)
            .is_some_and(|d| d.replication.is_some());
        if slave_of(caller).is_some() && (!replicated || req.after_task.is_none()) {
            return Err(RemoteError::new(
                SqlState::INSUFFICIENT_PRIVILEGE,
                format!(
                    "a slave cluster may compare only a database replicated to it, not {}",
                    req.db
                ),
            ));
        }
        if let Some(after) = req.after_task {
            let ddl = metadata
                .replication()
                .master
                .tasks
                .range(after + 1..)
                .find(|(_, t)| t.db == req.db && t.chunks.ddl && !t.truncated);
            if let Some((id, t)) = ddl {
                return Err(RemoteError::retryable(
                    PENDING_SQLSTATE,
                    format!(
                        "{} changed after task {after} ({} is task {id}): compare once the slave has applied it",
                        req.db,
                        t.op.name()
                    ),
                ));
            }
        }
        let Some((_, def)) = metadata.table(&req.db, &req.table) else {
            return Ok(Digests::new());
        };
        self.published_through(&metadata, req.at)?;
        let files = self
            .node
            .index()
            .snapshot((def.id, def.generation))
            .visible_at(req.at)
            .map_err(storage_err)?;
        let physical = def.physical_schema();
        tokio::task::spawn_blocking(move || digest_files(&files, &physical))
            .await
            .map_err(|e| RemoteError::new(SqlState::INTERNAL_ERROR, e.to_string()))
    }

    /// `dn.seed_files`: the files of a table generation visible at a pending cut. Only a cut
    /// the master recorded for the calling slave is answered (its files are kept for it), once
    /// this node has published every transaction committed up to it.
    async fn seed_files(
        &self,
        caller: &Caller,
        req: &SeedFilesRequest,
    ) -> Result<Vec<ShippedFile>, RemoteError> {
        let metadata = self
            .node
            .wait_applied(req.at)
            .await
            .map_err(|e| RemoteError::retryable(SqlState::CONNECTION_FAILURE, e.to_string()))?;
        if !metadata
            .replication()
            .cut_reads(slave_of(caller), req.at, req.table)
        {
            return Err(RemoteError::new(
                SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "no pending seed cut at index {} for table {}.{} of this slave",
                    req.at, req.table.0, req.table.1
                ),
            ));
        }
        self.published_through(&metadata, req.at)?;
        Ok(self
            .node
            .index()
            .snapshot(req.table)
            .visible_at_pin(req.at)
            .into_iter()
            .map(|f| ShippedFile {
                table: req.table,
                partition: f.partition.clone(),
                record: f.record.clone(),
            })
            .collect())
    }

    /// Streams `<tid>.task` (S01044 while it is still being written, S01040 when it is not
    /// there).
    async fn task_data(&self, tid: u64) -> Result<FlightStream, RemoteError> {
        crate::fault::delay_point("task-data-served").await;
        let dir = &self.node.options().replication_dir;
        // Checked first: the rename into place is atomic, so once the unfinished file is gone
        // the data is either there or lost.
        if task_data::is_pending(dir, tid) {
            return Err(RemoteError::retryable(
                PENDING_SQLSTATE,
                format!("[asyncReplication] Data of task {tid} has not been persisted on the master cluster. Will retry. RefId:S01044"),
            ));
        }
        let Some((schema, batches)) = task_data::read(dir, tid).map_err(storage_err)? else {
            let site = self
                .node
                .controller()
                .metadata()
                .node(self.node.id)
                .map(|n| n.addr.clone())
                .unwrap_or_default();
            return Err(RemoteError::new(
                MISSING_SQLSTATE,
                format!("[asyncReplication] Skipped task {tid}. Task data does not exist on site {site}. RefId:S01040"),
            ));
        };
        let data = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(ReceiverStream::new(batches).map_err(|e| stream_error(&e)))
            .map_err(stream_status);
        Ok(data.boxed())
    }

    /// `dn.task_files`: the files transaction `tid` wrote into the table on this node, live or
    /// retired but still on disk. Empty when the table is gone.
    fn task_files(&self, req: &TaskFilesRequest) -> Result<TaskFiles, RemoteError> {
        let dir = &self.node.options().replication_dir;
        if req.source {
            if task_data::is_pending(dir, req.tid) {
                return Err(RemoteError::retryable(
                    PENDING_SQLSTATE,
                    "task data not persisted yet",
                ));
            }
            if !task_data::task_path(dir, req.tid).exists() {
                return Err(RemoteError::new(
                    MISSING_SQLSTATE,
                    "task data does not exist",
                ));
            }
        }
        let index = self.node.index();
        // Published once the controller's commit reaches this node; until then, ask later.
        if index.prepared_tids().contains(&req.tid) {
            return Err(RemoteError::retryable(
                PENDING_SQLSTATE,
                "transaction not published yet",
            ));
        }
        let metadata = self.node.controller().metadata();
        let Some((_, def)) = metadata.table(&req.db, &req.table) else {
            return Ok(TaskFiles {
                columns: Vec::new(),
                files: Vec::new(),
            });
        };
        let key = (def.id, def.generation);
        let snapshot = index.snapshot(key);
        let live = snapshot.files();
        let retired = snapshot.retired.iter().map(|r| &r.file);
        let files = live
            .chain(retired)
            .filter(|f| f.record.tid == req.tid)
            .map(|f| ShippedFile {
                table: key,
                partition: f.partition.clone(),
                record: f.record.clone(),
            })
            .collect();
        Ok(TaskFiles {
            columns: columns(&def.physical_schema()),
            files,
        })
    }

    /// The bytes of a data file, one Flight message per chunk. The file is opened before this
    /// returns, so a file deleted afterwards is still read whole. Only a file the index lists,
    /// live or retired, is served: the ticket's names are looked up, never joined onto a path
    /// as they came.
    async fn file(&self, t: &FileTicket) -> Result<FlightStream, RemoteError> {
        use std::io::Read;
        crate::fault::delay_point("file-served").await;
        let snapshot = self.node.index().snapshot(t.table);
        let live = snapshot.partitions.get(&t.partition).into_iter().flatten();
        let retired = snapshot.retired.iter().map(|r| &r.file);
        let Some(listed) = live
            .chain(retired)
            .find(|f| f.partition == t.partition && f.record.name == t.name)
        else {
            return Err(storage_err(StorageError::UnknownFile {
                partition: t.partition.clone(),
                name: t.name.clone(),
            }));
        };
        let path = listed.path.clone();
        let mut file =
            std::fs::File::open(&path).map_err(|e| storage_err(StorageError::io(&path, e)))?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::task::spawn_blocking(move || loop {
            let mut buf = vec![0; CHUNK];
            let chunk = match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    Ok(Bytes::from(buf))
                }
                Err(e) => Err(StorageError::io(&path, e)),
            };
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
        });
        let throttle = t
            .seed
            .then(|| (self.seed_throttle.clone(), self.node.clone()));
        let stream = ReceiverStream::new(rx).then(move |chunk| {
            let throttle = throttle.clone();
            async move {
                match chunk {
                    Ok(body) => {
                        if let Some((t, node)) = throttle {
                            t.take(body.len()).await;
                            node.received
                                .seed_sent
                                .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
                        }
                        Ok(FlightData {
                            data_body: body,
                            ..FlightData::default()
                        })
                    }
                    Err(e) => Err(to_status(storage_err(e))),
                }
            }
        });
        Ok(stream.boxed())
    }
}

/// The cluster id of a calling slave node (`None` for this cluster's nodes and unverified
/// callers of an insecure node).
fn slave_of(caller: &Caller) -> Option<&str> {
    match caller {
        Caller::Peer(Peer::Slave { cluster, .. }) => Some(cluster.as_str()),
        _ => None,
    }
}

fn storage_err(e: StorageError) -> RemoteError {
    RemoteError::from_error(&e)
}

fn bad(e: RpcError) -> RemoteError {
    RemoteError::new(
        SqlState::PROTOCOL_VIOLATION,
        format!("malformed request: {e}"),
    )
}

#[async_trait]
impl Service for MasterDataService {
    fn handles(&self, call: &str) -> bool {
        call == TASK_FILES || call == SEED_FILES || call == DIGEST
    }

    fn handles_ticket(&self, kind: &str) -> bool {
        kind == TASK_DATA || kind == FILE
    }

    fn is_slave_call(&self, call: Call<'_>) -> bool {
        match call {
            Call::Action(name) => name == TASK_FILES || name == SEED_FILES || name == DIGEST,
            Call::Get(kind) => kind == TASK_DATA || kind == FILE,
            Call::Put => false,
        }
    }

    async fn action(&self, caller: &Caller, call: &str, body: Bytes) -> Bytes {
        if call == DIGEST {
            return match decode::<DigestRequest>(&body) {
                Ok(req) => reply(self.digest(caller, &req).await),
                Err(e) => reply::<()>(Err(bad(e))),
            };
        }
        if call == SEED_FILES {
            return match decode::<SeedFilesRequest>(&body) {
                Ok(req) => reply(self.seed_files(caller, &req).await),
                Err(e) => reply::<()>(Err(bad(e))),
            };
        }
        match decode::<TaskFilesRequest>(&body) {
            Ok(req) if call == TASK_FILES => reply(self.task_files(&req)),
            Ok(_) => reply::<()>(Err(RemoteError::new(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("unknown data node call {call}"),
            ))),
            Err(e) => reply::<()>(Err(bad(e))),
        }
    }

    async fn get(
        &self,
        _caller: &Caller,
        kind: &str,
        ticket: Bytes,
    ) -> Result<FlightStream, Status> {
        let result = match kind {
            TASK_DATA => match decode_ticket::<TaskDataTicket>(kind, &ticket) {
                Ok(t) => self.task_data(t.tid).await,
                Err(e) => Err(bad(e)),
            },
            _ => match decode_ticket::<FileTicket>(kind, &ticket) {
                Ok(t) => self.file(&t).await,
                Err(e) => Err(bad(e)),
            },
        };
        result.map_err(to_status)
    }
}
