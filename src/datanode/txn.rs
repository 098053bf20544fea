//! A write transaction on one table, run by the data node the client is connected to (the
//! coordinator): route rows to partitions, stage each partition's rows on the data node that
//! owns it ([`Staging`] here, or a remote one fed over Arrow Flight `do_put`), then
//! 1. prepare every participant (each records its files durably as prepared),
//! 2. commit the `tid` through the controller's raft log: **the commit point**,
//! 3. tell every participant to publish.
//!
//! A participant that misses step 3 (it was down) publishes on its own once it sees the
//! transaction committed in the metadata; one that holds a prepared transaction the
//! controller no longer knows discards it. Dropping a transaction before commit aborts it.
//!
//! [`WriteTxn::commit_all`] commits several transactions of this coordinator (a session's
//! transaction block that wrote several tables) in one step 2: one `CommitTxn` entry carries
//! them all, so the controller commits every one of their ids or none.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, RecordBatch};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::FlightDescriptor;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use super::staging::{StagedCounts, Staging};
use super::{DataNode, DataNodeError};
use crate::catalog::scheme::route;
use crate::catalog::{DatabaseDef, NodeId, TableDef, DIMENSION_PARTITION};
use crate::controller::metadata::{Command, CommandResult, TableVersion, TxnPart};
use crate::replication::master::task::TaskRecorder;
use crate::replication::master::task_data::{self, TaskDataWriter};
use crate::replication::model::{Applies, OpType, SeedStep, TxnTask};
use crate::replication::protocol::ShippedFile;
use crate::rpc::{decode, encode, RemoteError, RpcError};

/// Action names of the participant calls.
pub const PREPARE: &str = "dn.prepare";
pub const PUBLISH: &str = "dn.publish";
pub const ABORT: &str = "dn.abort";

/// How long a participant call may take (preparing waits for the last files to be written).
const PARTICIPANT_TIMEOUT: Duration = Duration::from_secs(60);

/// Stages data files of another cluster, fetched by this node from that cluster's data node
/// (a replicated APPEND taken as the master's files; see [`crate::replication::slave::files`]).
pub const ADOPT: &str = "dn.adopt";

/// `dn.adopt`: stage `files` (of partitions this node owns) fetched from `src`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdoptRequest {
    pub tid: u64,
    pub at: TableAt,
    pub src: String,
    pub files: Vec<ShippedFile>,
    /// Files of a seed (fetched through the node's seed cache, at the seed rate).
    #[serde(default)]
    pub seed: bool,
    /// Remove every published file of the table on the node first (a seed, a repair, DROP
    /// PARTITION).
    #[serde(default)]
    pub clear: bool,
    /// Limits `clear` to these partitions (a repair, DROP PARTITION).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<std::collections::BTreeSet<String>>,
}

/// A table as the coordinator saw it, in every request it sends another data node about it.
/// The receiver waits until its metadata has applied `min_applied_index` (so it routes rows by
/// the same partition domains) and refuses the request if the table has changed since.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TableAt {
    pub db: String,
    pub table: String,
    pub table_id: u32,
    pub generation: u64,
    /// The applied index of the coordinator's metadata. Serialised as `min_version`, the name
    /// older nodes send and expect.
    #[serde(rename = "min_version")]
    pub min_applied_index: u64,
}

impl TableAt {
    /// `table` of `db` as `node`'s metadata has it now.
    pub fn now(node: &DataNode, db: &str, table: &TableDef) -> Self {
        TableAt {
            db: db.to_string(),
            table: table.name.clone(),
            table_id: table.id,
            generation: table.generation,
            min_applied_index: node.controller.metadata().applied_index(),
        }
    }
}

/// The descriptor of a `do_put` carrying a transaction's rows for one owner.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageRequest {
    pub tid: u64,
    pub at: TableAt,
}

/// `dn.prepare`, `dn.publish`, `dn.abort`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TidRequest {
    pub tid: u64,
    /// `dn.publish`: the transaction's commit index. Serialised as `version`, the name older
    /// nodes send and expect.
    #[serde(default, rename = "version")]
    pub commit_index: u64,
}

impl TidRequest {
    pub fn new(tid: u64) -> Self {
        TidRequest {
            tid,
            commit_index: 0,
        }
    }
}

/// The answer to `dn.prepare`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrepareReply {
    pub counts: StagedCounts,
    pub prepared: bool,
}

/// Rows on their way to a remote owner.
struct RemotePart {
    addr: String,
    sent: StagedCounts,
    tx: Option<mpsc::Sender<RecordBatch>>,
    put: Option<JoinHandle<Result<Vec<Bytes>, RpcError>>>,
}

/// An open write transaction. See the module documentation.
pub struct WriteTxn {
    node: Arc<DataNode>,
    tid: u64,
    db: DatabaseDef,
    table: TableDef,
    local: Staging,
    remotes: BTreeMap<NodeId, RemotePart>,
    rows: u64,
    local_prepared: bool,
    done: bool,
    /// Set when the database is replicated (this cluster is an enabled master).
    replicating: Option<TaskRecorder>,
    /// The slave tasks this transaction applies, with this node's alias.
    applies: Option<Applies>,
    /// The table of a slave's seed this transaction installs.
    seeded: Option<SeedStep>,
}

impl WriteTxn {
    pub(super) async fn begin(
        node: Arc<DataNode>,
        db: &str,
        table: &str,
    ) -> Result<Self, DataNodeError> {
        let metadata = node.controller.metadata();
        let (dbdef, tdef) = metadata.table(db, table).ok_or_else(|| {
            crate::controller::error::MetadataError::TableNotFound {
                db: db.to_string(),
                table: table.to_string(),
            }
        })?;
        let (dbdef, tdef) = (dbdef.clone(), tdef.clone());
        let replicating = metadata.replicated_db(db).map(|_| TaskRecorder::default());
        let tid = node.next_tid().await?;
        Ok(WriteTxn {
            local: Staging::new(node.clone(), tid, tdef.clone()),
            node,
            tid,
            db: dbdef,
            table: tdef,
            remotes: BTreeMap::new(),
            rows: 0,
            local_prepared: false,
            done: false,
            replicating,
            applies: None,
            seeded: None,
        })
    }

    /// Makes this transaction the application of slave tasks by a data node: its commit
    /// finishes them, and is refused if one was finished already.
    pub fn applies_tasks(&mut self, applies: Applies) {
        self.applies = Some(applies);
    }

    /// Makes this transaction the installation of a table of a slave's seed: its commit
    /// records the table as seeded, and is refused if it was recorded already.
    pub fn seeds_table(&mut self, step: SeedStep) {
        self.seeded = Some(step);
    }

    /// Records the statement of an UPDATE or DELETE for its replication task (a no-op unless
    /// the database is replicated).
    pub fn replicate_rewrite(
        &mut self,
        op: OpType,
        filters: Vec<Vec<u8>>,
        update: Option<Vec<(String, Vec<u8>)>>,
    ) {
        if let Some(r) = &mut self.replicating {
            let table = format!("{}/{}", self.db.name, self.table.name);
            r.rewrite(table, op, filters, update);
        }
    }

    /// Keeps appended rows as task data and notes their partitions (replicated databases).
    async fn record(
        &mut self,
        batch: &RecordBatch,
        partitions: impl Iterator<Item = &str>,
    ) -> Result<(), DataNodeError> {
        let Some(r) = &mut self.replicating else {
            return Ok(());
        };
        let data = (
            self.node.options.replication_dir.as_path(),
            self.tid,
            self.table.input_schema(),
        );
        let table = format!("{}/{}", self.db.name, self.table.name);
        Ok(r.append(data, &table, batch, partitions).await?)
    }

    pub fn tid(&self) -> u64 {
        self.tid
    }

    /// The table as it was when the transaction began.
    pub fn table(&self) -> &TableDef {
        &self.table
    }

    pub fn database(&self) -> &DatabaseDef {
        &self.db
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The data node owning `partition` (`None` if it is not in the database's domain).
    pub fn owner(&self, partition: &str) -> Option<NodeId> {
        let metadata = self.node.controller.metadata();
        let db = metadata.database(&self.db.name)?;
        if !self.table.is_dimension() && !db.def.has_partition(partition) {
            return None;
        }
        db.def.owner(partition)
    }

    /// Whether rows of this transaction may come as another cluster's data files
    /// ([`Self::adopt`]): not when they must be kept as task data for a slave of this cluster.
    pub fn can_adopt(&self) -> bool {
        self.replicating.is_none()
    }

    /// Adds the rows of another cluster's data files (a replicated APPEND; see
    /// [`crate::replication::slave::files`]) of one partition, fetched from `src` by the partition's owner.
    pub async fn adopt(
        &mut self,
        src: &str,
        partition: &str,
        files: Vec<ShippedFile>,
    ) -> Result<(), DataNodeError> {
        self.adopt_as(src, partition, files, false).await
    }

    /// Removes every row of the table, or of its partitions `only`, on every data node of the
    /// database: the rows a seed or repair then adopts replace them ([`Self::adopt_seed`]).
    pub async fn clear(
        &mut self,
        only: Option<std::collections::BTreeSet<String>>,
    ) -> Result<(), DataNodeError> {
        if !self.can_adopt() {
            return Err(DataNodeError::Task(
                "a replicated database's rows cannot be replaced by a seed".into(),
            ));
        }
        self.clear_owners(only).await
    }

    /// `ALTER TABLE ... DROP PARTITION`: removes every row of `partitions`, on their owners;
    /// in a replicated database the task replays the drop (DROP_PARTITION). On a slave it
    /// applies such a task.
    pub async fn drop_partitions(
        &mut self,
        partitions: std::collections::BTreeSet<String>,
    ) -> Result<(), DataNodeError> {
        if let Some(r) = &mut self.replicating {
            let table = format!("{}/{}", self.db.name, self.table.name);
            r.drop_partitions(table, &partitions);
        }
        self.clear_owners(Some(partitions)).await
    }

    /// Removes the table's rows (of partitions `only`) on every data node of the database.
    async fn clear_owners(
        &mut self,
        only: Option<std::collections::BTreeSet<String>>,
    ) -> Result<(), DataNodeError> {
        let mut owners: Vec<NodeId> = self.db.placement.clone();
        if owners.is_empty() {
            owners.push(self.node.id);
        }
        for owner in owners {
            if owner == self.node.id {
                self.local.clear_table(only.as_ref())?;
                continue;
            }
            let request = AdoptRequest {
                tid: self.tid,
                at: TableAt::now(&self.node, &self.db.name, &self.table),
                src: String::new(),
                files: Vec::new(),
                seed: false,
                clear: true,
                only: only.clone(),
            };
            let peers = self.node.peers.clone();
            let addr = self.remote(owner)?.addr.clone();
            let _: StagedCounts = peers
                .call(&addr, ADOPT, &request, PARTICIPANT_TIMEOUT)
                .await
                .map_err(rpc)?;
        }
        Ok(())
    }

    /// Adds a seed's files of one partition, fetched from `src` by the partition's owner
    /// through its seed cache.
    pub async fn adopt_seed(
        &mut self,
        src: &str,
        partition: &str,
        files: Vec<ShippedFile>,
    ) -> Result<(), DataNodeError> {
        self.adopt_as(src, partition, files, true).await
    }

    async fn adopt_as(
        &mut self,
        src: &str,
        partition: &str,
        files: Vec<ShippedFile>,
        seed: bool,
    ) -> Result<(), DataNodeError> {
        if !self.can_adopt() {
            return Err(DataNodeError::Task(
                "a replicated database's rows cannot come as data files".into(),
            ));
        }
        let owner = self
            .owner(partition)
            .ok_or_else(|| DataNodeError::Misrouted {
                db: self.db.name.clone(),
                partition: partition.to_string(),
            })?;
        let rows: u64 = files.iter().map(|f| f.record.rows).sum();
        self.rows += rows;
        if owner == self.node.id {
            for file in files {
                self.local.adopt(src.to_string(), file, seed).await?;
            }
            return Ok(());
        }
        let request = AdoptRequest {
            tid: self.tid,
            at: TableAt::now(&self.node, &self.db.name, &self.table),
            src: src.to_string(),
            files,
            seed,
            clear: false,
            only: None,
        };
        let peers = self.node.peers.clone();
        let part = self.remote(owner)?;
        part.sent.rows += rows;
        let addr = part.addr.clone();
        let _: StagedCounts = peers
            .call(&addr, ADOPT, &request, PARTICIPANT_TIMEOUT)
            .await
            .map_err(rpc)?;
        Ok(())
    }

    /// The data node owning `partition` when it is not this one.
    pub fn remote_owner(&self, partition: &str) -> Option<NodeId> {
        self.db.owner(partition).filter(|o| *o != self.node.id)
    }

    /// Adds rows, given in the table's logical schema (`TableDef::logical_schema`).
    pub async fn append(&mut self, batch: RecordBatch) -> Result<(), DataNodeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        for (c, col) in self.table.columns.iter().zip(batch.columns()) {
            if c.not_null && col.null_count() > 0 {
                return Err(DataNodeError::NotNull {
                    column: c.name.clone(),
                });
            }
        }
        if self.table.is_dimension() {
            self.rows += batch.num_rows() as u64;
            self.record(&batch, std::iter::once(DIMENSION_PARTITION))
                .await?;
            return self.add(DIMENSION_PARTITION.to_string(), batch).await;
        }
        let columns = self.table.partition_column_indices();
        let names = self.table.partition_columns.clone();
        let policy = self.node.options.new_value_policy;
        // The VALUE domains may have grown since the transaction began: route by the latest.
        let levels = self.current_levels();
        let mut routing = route(&levels, &columns, &names, &batch, policy)?;
        if !routing.new_values.is_empty() {
            let mut by_level: BTreeMap<usize, Vec<_>> = BTreeMap::new();
            for (level, value) in std::mem::take(&mut routing.new_values) {
                by_level.entry(level).or_default().push(value);
            }
            for (level, values) in by_level {
                let r = self
                    .node
                    .controller
                    .write(Command::AddValuePartitions {
                        db: self.db.name.clone(),
                        level,
                        values,
                    })
                    .await?;
                if let CommandResult::Err(e) = r {
                    return Err(e.into());
                }
            }
        }
        if self.replicating.is_some() {
            let partitions: Vec<String> =
                routing.parts.iter().map(|p| p.partition.clone()).collect();
            self.record(&batch, partitions.iter().map(String::as_str))
                .await?;
        }
        for part in routing.parts {
            self.rows += part.batch.num_rows() as u64;
            self.add(part.partition, part.batch).await?;
        }
        Ok(())
    }

    async fn add(&mut self, partition: String, batch: RecordBatch) -> Result<(), DataNodeError> {
        match self.remote_owner(&partition) {
            None => self.local.add(partition, batch).await,
            Some(owner) => self.send(owner, batch).await,
        }
    }

    fn current_levels(&self) -> Vec<crate::catalog::PartitionLevel> {
        self.node
            .controller
            .metadata()
            .database(&self.db.name)
            .map(|d| d.def.levels.clone())
            .unwrap_or_else(|| self.db.levels.clone())
    }

    /// The participant entry of a remote owner.
    fn remote(&mut self, owner: NodeId) -> Result<&mut RemotePart, DataNodeError> {
        if !self.remotes.contains_key(&owner) {
            let addr = self
                .node
                .controller
                .metadata()
                .node(owner)
                .map(|n| n.addr.clone())
                .ok_or(DataNodeError::UnknownNode(owner))?;
            self.remotes.insert(
                owner,
                RemotePart {
                    addr,
                    sent: StagedCounts::default(),
                    tx: None,
                    put: None,
                },
            );
        }
        Ok(self.remotes.get_mut(&owner).expect("inserted above"))
    }

    /// The address of a remote owner taking part in the transaction through a rewrite the
    /// caller sends it (`q.rewrite`); counted so the prepare step can check it arrived.
    pub fn remote_rewrite(&mut self, owner: NodeId) -> Result<String, DataNodeError> {
        let part = self.remote(owner)?;
        part.sent.rewrites += 1;
        Ok(part.addr.clone())
    }

    /// Streams rows to a remote owner; the `do_put` starts with the first batch.
    async fn send(&mut self, owner: NodeId, batch: RecordBatch) -> Result<(), DataNodeError> {
        let open = self.remotes.get(&owner).is_some_and(|p| p.tx.is_some());
        if !open {
            let request = StageRequest {
                tid: self.tid,
                at: TableAt::now(&self.node, &self.db.name, &self.table),
            };
            let descriptor = FlightDescriptor::new_cmd(encode(&request).map_err(rpc)?);
            let (tx, rx) = mpsc::channel::<RecordBatch>(4);
            let data = FlightDataEncoderBuilder::new()
                .with_schema(self.table.input_schema())
                .with_flight_descriptor(Some(descriptor))
                .build(ReceiverStream::new(rx).map(Ok));
            let peers = self.node.peers.clone();
            let part = self.remote(owner)?;
            let addr = part.addr.clone();
            part.put = Some(tokio::spawn(async move { peers.put(&addr, data).await }));
            part.tx = Some(tx);
        }
        let part = self.remote(owner)?;
        part.sent.rows += batch.num_rows() as u64;
        let sent = match &part.tx {
            Some(tx) => tx.send(batch).await.is_ok(),
            None => false,
        };
        if !sent {
            // The stream ended early: its error says why.
            return Err(Self::finish_put(part).await.err().unwrap_or_else(|| {
                DataNodeError::Task("the row stream to a data node ended early".into())
            }));
        }
        Ok(())
    }

    /// Closes a remote owner's row stream and checks its answer.
    async fn finish_put(part: &mut RemotePart) -> Result<(), DataNodeError> {
        part.tx = None;
        let Some(put) = part.put.take() else {
            return Ok(());
        };
        let answers = put.await?.map_err(rpc)?;
        for a in answers {
            let r: Result<StagedCounts, RemoteError> = decode(&a).map_err(rpc)?;
            r.map_err(|e| rpc(RpcError::Remote(e)))?;
        }
        Ok(())
    }

    /// Replaces the published files `old` of a partition this node owns with `rows` (logical
    /// schema; may be empty). The caller holds the table's rewrite lock.
    pub async fn rewrite(
        &mut self,
        partition: &str,
        old: &[crate::storage::DataFileRef],
        rows: Vec<RecordBatch>,
    ) -> Result<(), DataNodeError> {
        self.local.rewrite(partition, old, rows).await
    }

    /// Makes the transaction durable and visible on every participant; returns the number of
    /// rows written.
    ///
    /// The commit runs to its end even if the caller stops waiting (a client that went away,
    /// a call that timed out): dropped halfway, it would leave the transaction active with
    /// its files prepared and claimed, and no one left to settle it.
    pub async fn commit(self) -> Result<u64, DataNodeError> {
        tokio::spawn(Self::run_commit(vec![self])).await?
    }

    /// Commits several transactions coordinated here (a transaction block that wrote several
    /// tables) atomically: every one is prepared, then one `CommitTxn` entry commits them all
    /// (or none: if one cannot prepare or the controller refuses one, all are aborted). After
    /// `kill -9` of any process each participant settles each transaction by the controller's
    /// outcome for its id, which the one entry decided for all of them. Returns the number of
    /// rows written. Runs to its end like [`Self::commit`].
    pub async fn commit_all(txns: Vec<WriteTxn>) -> Result<u64, DataNodeError> {
        if txns.is_empty() {
            return Ok(0);
        }
        tokio::spawn(Self::run_commit(txns)).await?
    }

    async fn run_commit(txns: Vec<WriteTxn>) -> Result<u64, DataNodeError> {
        let mut rows = 0;
        let mut prepared: Vec<Prepared> = Vec::with_capacity(txns.len());
        let mut failed = None;
        for txn in txns {
            if failed.is_some() {
                // Dropped unprepared: aborted.
                drop(txn);
                continue;
            }
            match txn.prepare_for_commit().await {
                Ok(Ready::Prepared(p)) => prepared.push(*p),
                Ok(Ready::Empty(n)) => rows += n,
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            Prepared::discard_all(prepared)?;
            return Err(e);
        }
        if prepared.is_empty() {
            return Ok(rows);
        }
        crate::fault::crash_point("txn-prepared");
        crate::fault::delay_point("txn-prepared").await;
        let node = prepared[0].txn.node.clone();
        // Synchronous persistence: the task data is durable before the commit point.
        if node.options.replication_sync {
            let mut persisted = Ok(());
            for p in &mut prepared {
                if let Some(data) = p.task_data.take() {
                    persisted = data.persist().await;
                    if persisted.is_err() {
                        break;
                    }
                }
            }
            if let Err(e) = persisted {
                Prepared::discard_all(prepared)?;
                return Err(e.into());
            }
        }
        let tid = prepared[0].txn.tid;
        let applies = prepared[0].txn.applies.take();
        let seeded = prepared[0].txn.seeded.take().map(Box::new);
        let with: Vec<TxnPart> = prepared[1..].iter_mut().map(Prepared::part).collect();
        let first = prepared[0].part();
        let outcome = node
            .write_with_ended(|ended| Command::CommitTxn {
                tid,
                tables: first.tables,
                participants: first.participants,
                task: first.task,
                applies,
                seeded,
                ended,
                with,
            })
            .await;
        let (commit_index, mut tasks) = match outcome {
            Ok(CommandResult::Committed {
                commit_index,
                task,
                tasks,
            }) => (commit_index, std::iter::once(task).chain(tasks)),
            Ok(CommandResult::Err(e)) => {
                Prepared::discard_all(prepared)?;
                return Err(e.into());
            }
            Ok(_) => return Err(DataNodeError::Protocol("CommitTxn")),
            // In doubt: every participant keeps its prepared record until this node settles
            // the outcome with the controller (`DataNode::settle_in_doubt`).
            Err(source) => {
                for mut p in prepared {
                    let data = p.task_data.take();
                    p.txn.node.push_in_doubt(p.txn.tid, data);
                }
                return Err(DataNodeError::InDoubt { tid, source });
            }
        };
        for p in &mut prepared {
            p.task_data_after_commit(tasks.next().flatten());
        }
        crate::fault::crash_point("txn-committed");
        let mut error = None;
        for p in prepared {
            match p.publish(commit_index).await {
                Ok(n) => rows += n,
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(rows),
        }
    }

    /// Prepares the transaction on every participant (step 1).
    async fn prepare_for_commit(mut self) -> Result<Ready, DataNodeError> {
        self.done = true;
        let node = self.node.clone();
        let tid = self.tid;
        let (task, task_data) = self.replication_task();
        if let Err(e) = self.prepare_all().await {
            self.abort_remotes();
            if self.remotes.is_empty() {
                node.push_ended(tid);
            } else {
                node.end_now(tid);
            }
            return Err(e);
        }
        let mut participants: Vec<NodeId> = self.remotes.keys().copied().collect();
        let local_prepared = self.local_prepared;
        if local_prepared {
            participants.push(node.id);
        }
        if participants.is_empty() && self.applies.is_none() && self.seeded.is_none() {
            node.push_ended(tid);
            return Ok(Ready::Empty(self.rows));
        }
        Ok(Ready::Prepared(Box::new(Prepared {
            txn: self,
            participants,
            local_prepared,
            task,
            task_data,
        })))
    }

    /// The replication task to commit with, and the task data to persist.
    fn replication_task(&mut self) -> (Option<TxnTask>, Option<TaskDataWriter>) {
        let Some(r) = self.replicating.take() else {
            return (None, None);
        };
        let (task, data) = r.finish(&self.db.name, &self.table.name, self.rows);
        (Some(task), data)
    }

    /// Closes the row streams and prepares every participant, checking that each holds what
    /// was sent to it.
    async fn prepare_all(&mut self) -> Result<(), DataNodeError> {
        for part in self.remotes.values_mut() {
            Self::finish_put(part).await?;
        }
        self.local_prepared = self.local.prepare().await?;
        let tid = self.tid;
        let calls = self.remotes.iter().map(|(id, part)| {
            let peers = self.node.peers.clone();
            let addr = part.addr.clone();
            let sent = part.sent;
            async move {
                let r: Result<PrepareReply, RpcError> = peers
                    .call(&addr, PREPARE, &TidRequest::new(tid), PARTICIPANT_TIMEOUT)
                    .await;
                (*id, addr, sent, r)
            }
        });
        for (id, addr, sent, r) in futures::future::join_all(calls).await {
            let reply = r.map_err(rpc)?;
            if reply.counts != sent {
                return Err(DataNodeError::ParticipantLost {
                    node: id,
                    addr,
                    sent_rows: sent.rows,
                    staged_rows: reply.counts.rows,
                });
            }
        }
        Ok(())
    }

    /// Tells remote participants to drop the transaction (best effort: a participant that
    /// misses it discards the transaction once the controller forgets it).
    fn abort_remotes(&mut self) {
        let tid = self.tid;
        for part in self.remotes.values_mut() {
            part.tx = None;
            if let Some(put) = part.put.take() {
                put.abort();
            }
            let peers = self.node.peers.clone();
            let addr = part.addr.clone();
            tokio::spawn(async move {
                let r: Result<(), RpcError> = peers
                    .call(&addr, ABORT, &TidRequest::new(tid), PARTICIPANT_TIMEOUT)
                    .await;
                if let Err(e) = r {
                    tracing::debug!(tid, %addr, error = %e, "abort not delivered");
                }
            });
        }
    }
}

/// What preparing a transaction for its commit came to.
enum Ready {
    /// Prepared on every participant, waiting for the commit point.
    Prepared(Box<Prepared>),
    /// Nothing to commit (no rows anywhere): ended, with its row count.
    Empty(u64),
}

/// A transaction prepared on every participant.
struct Prepared {
    txn: WriteTxn,
    participants: Vec<NodeId>,
    local_prepared: bool,
    task: Option<TxnTask>,
    /// Task data to persist after the commit (asynchronous persistence).
    task_data: Option<TaskDataWriter>,
}

impl Prepared {
    /// What the commit entry says of this transaction.
    fn part(&mut self) -> TxnPart {
        let t = &self.txn;
        TxnPart {
            tid: t.tid,
            tables: vec![TableVersion {
                db: t.db.name.clone(),
                table: t.table.name.clone(),
                table_id: t.table.id,
                generation: t.table.generation,
            }],
            participants: self.participants.clone(),
            task: self.task.take(),
        }
    }

    /// Aborts every transaction of `prepared`, reporting the first that could not be.
    fn discard_all(prepared: Vec<Prepared>) -> Result<(), DataNodeError> {
        let mut first = Ok(());
        for p in prepared {
            if let Err(e) = p.discard() {
                tracing::warn!(error = %e, "cannot discard a transaction's prepared files");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// Aborts the transaction on every participant (its commit was refused, or another of
    /// the same commit could not prepare).
    fn discard(mut self) -> Result<(), DataNodeError> {
        let node = self.txn.node.clone();
        let tid = self.txn.tid;
        if node.options.replication_sync {
            task_data::remove_persisted(&node.options.replication_dir, tid);
        }
        self.txn.local.discard()?;
        self.txn.abort_remotes();
        node.end_now(tid);
        Ok(())
    }

    /// Persists the task data of a committed transaction queued as replication task
    /// `queued`, or removes what was persisted before the commit if it was not queued
    /// (replication was switched off meanwhile).
    fn task_data_after_commit(&mut self, queued: Option<u64>) {
        let node = &self.txn.node;
        let tid = self.txn.tid;
        let sync = node.options.replication_sync;
        match (queued, self.task_data.take()) {
            // Asynchronous persistence: after the commit, off the statement's path.
            (Some(_), Some(data)) => {
                tokio::spawn(async move {
                    crate::fault::delay_point("task-data-async-persist").await;
                    if let Err(e) = data.persist().await {
                        tracing::error!(tid, error = %e, "[asyncReplication] Failed to write task {tid}, with error: {e}. RefId:S01035");
                    }
                });
            }
            (None, _) if sync => task_data::remove_persisted(&node.options.replication_dir, tid),
            _ => {}
        }
    }

    /// Tells every participant to publish the committed transaction (step 3); returns its
    /// rows.
    async fn publish(mut self, commit_index: u64) -> Result<u64, DataNodeError> {
        let node = self.txn.node.clone();
        let tid = self.txn.tid;
        let mut published = Vec::new();
        if self.local_prepared {
            self.txn.local.publish(commit_index).await?;
            published.push(node.id);
        }
        crate::fault::delay_point("txn-published-locally").await;
        let calls = self.txn.remotes.iter().map(|(id, part)| {
            let peers = node.peers.clone();
            let addr = part.addr.clone();
            async move {
                let r: Result<(), RpcError> = peers
                    .call(
                        &addr,
                        PUBLISH,
                        &TidRequest { tid, commit_index },
                        PARTICIPANT_TIMEOUT,
                    )
                    .await;
                (*id, r)
            }
        });
        for (id, r) in futures::future::join_all(calls).await {
            match r {
                Ok(()) => published.push(id),
                // It publishes by itself once it sees the commit.
                Err(e) => tracing::warn!(tid, node = id, error = %e, "participant did not publish"),
            }
        }
        if published.len() == self.participants.len() {
            node.push_ended(tid);
        } else if let Err(e) = node
            .controller
            .write(Command::Published {
                tid,
                nodes: published,
            })
            .await
        {
            tracing::warn!(tid, error = %e, "cannot report published participants");
        }
        Ok(self.txn.rows)
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Not committed: the local staging discards itself; tell the others.
        if tokio::runtime::Handle::try_current().is_ok() && !self.remotes.is_empty() {
            self.abort_remotes();
            self.node.end_now(self.tid);
        } else {
            self.node.push_ended(self.tid);
        }
    }
}

fn rpc(e: RpcError) -> DataNodeError {
    DataNodeError::Rpc(Box::new(e))
}
