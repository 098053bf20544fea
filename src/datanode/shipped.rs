//! Replicated APPENDs applied from the master's own Parquet files.
//!
//! Every master data node that took part in an APPEND wrote its share as Parquet files named
//! by the transaction (`FileRecord::tid`). A slave whose table has the same physical schema
//! and knows every partition takes those files as they are: each slave owner fetches its
//! partitions' files from the master data node that holds them and stages them in the slave
//! transaction, with the statistics the master recorded. Nothing is decoded, routed, sorted
//! or encoded again; the slave only copies and fsyncs.
//!
//! The master's `<tid>.task` stays the authority on whether the task has data: the list of
//! files is asked of the task's holders only once the task data is in place on its source
//! node, and a slave that cannot use the files (a file compacted away and purged, a partition
//! it does not know yet, a schema that differs, a holder out of reach) applies the rows of
//! `<tid>.task` instead.

use std::path::Path;
use std::sync::atomic::AtomicU64;

use arrow::datatypes::SchemaRef;
use arrow_flight::FlightData;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::{task_data, DataNode};
use crate::rpc::client::Peers;
use crate::rpc::{encode, RemoteError};
use crate::storage::{sync_dir, FileRecord, StorageError, TableKey};

/// The action listing a transaction's files on a master data node.
pub const TASK_FILES: &str = "dn.task_files";

/// The action asking a slave owner to fetch and stage files.
pub const ADOPT: &str = "dn.adopt";

/// Bytes per Flight message of a file.
const CHUNK: usize = 1 << 20;

/// How a slave data node received replicated APPENDs, since it started (`/metrics`).
#[derive(Debug, Default)]
pub struct Received {
    /// Data files taken from the master as they are, and their bytes.
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    /// Rows fetched from the master's task data instead.
    pub rows: AtomicU64,
}

/// `dn.task_files`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskFilesRequest {
    pub tid: u64,
    pub db: String,
    pub table: String,
    /// Whether this node is the task's source: it answers only once the task data is in
    /// place (not persisted yet: S01044; lost: the row path reports "Missing taskData").
    pub source: bool,
}

/// A master data file of a transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShippedFile {
    /// The master's table generation (to find the file there).
    pub table: TableKey,
    pub partition: String,
    pub record: FileRecord,
}

/// The answer to `dn.task_files`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskFiles {
    /// The table's physical columns as the master stores them: name and Arrow type.
    pub columns: Vec<(String, String)>,
    pub files: Vec<ShippedFile>,
}

/// `do_get` of one data file's bytes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileTicket {
    pub table: TableKey,
    pub partition: String,
    pub name: String,
}

/// The encoding of `DataTicket::File` (`crate::query::service`, whose data service answers
/// it), written here where the data node asks for files.
#[derive(Serialize)]
pub enum Ticket<'a> {
    File(&'a FileTicket),
}

/// `dn.adopt`: stage `files` (of partitions this node owns) fetched from `src`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdoptRequest {
    pub tid: u64,
    pub at: super::TableAt,
    pub src: String,
    pub files: Vec<ShippedFile>,
}

/// Physical columns as [`TaskFiles::columns`] lists them.
pub fn columns(schema: &SchemaRef) -> Vec<(String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string()))
        .collect()
}

impl DataNode {
    /// `dn.task_files`: the files transaction `tid` wrote into the table on this node, live or
    /// retired but still on disk. Empty when the table is gone.
    pub fn task_files(&self, req: &TaskFilesRequest) -> Result<TaskFiles, RemoteError> {
        let dir = &self.options.replication_dir;
        if req.source {
            if task_data::is_pending(dir, req.tid) {
                return Err(RemoteError::retryable(
                    task_data::PENDING_SQLSTATE,
                    "task data not persisted yet",
                ));
            }
            if !task_data::task_path(dir, req.tid).exists() {
                return Err(RemoteError::new(
                    task_data::MISSING_SQLSTATE,
                    "task data does not exist",
                ));
            }
        }
        // Published once the controller's commit reaches this node; until then, ask later.
        if self.index.prepared_tids().contains(&req.tid) {
            return Err(RemoteError::retryable(
                task_data::PENDING_SQLSTATE,
                "transaction not published yet",
            ));
        }
        let metadata = self.controller.metadata();
        let Some((_, def)) = metadata.table(&req.db, &req.table) else {
            return Ok(TaskFiles {
                columns: Vec::new(),
                files: Vec::new(),
            });
        };
        let key = (def.id, def.generation);
        let snapshot = self.index.snapshot(key);
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

    /// The bytes of a data file, in chunks. The file is opened before this returns, so a file
    /// deleted afterwards is still read whole. Only a file the index lists, live or retired, is
    /// served: the ticket's names are looked up, never joined onto a path as they came.
    pub fn file_chunks(
        &self,
        t: &FileTicket,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<Bytes, StorageError>>, StorageError> {
        use std::io::Read;
        let snapshot = self.index.snapshot(t.table);
        let live = snapshot.partitions.get(&t.partition).into_iter().flatten();
        let retired = snapshot.retired.iter().map(|r| &r.file);
        let Some(listed) = live
            .chain(retired)
            .find(|f| f.partition == t.partition && f.record.name == t.name)
        else {
            return Err(StorageError::UnknownFile {
                partition: t.partition.clone(),
                name: t.name.clone(),
            });
        };
        let path = listed.path.clone();
        let mut file = std::fs::File::open(&path).map_err(|e| StorageError::io(&path, e))?;
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
        Ok(rx)
    }
}

/// Fetches `file` from the master data node at `src` into `path` and makes it durable; checks
/// that it holds the rows and columns the master listed. Returns its size.
pub async fn fetch(
    peers: &Peers,
    src: &str,
    file: &ShippedFile,
    path: &Path,
    physical: &SchemaRef,
) -> Result<u64, StorageError> {
    let lost = |reason: String| StorageError::Transfer {
        path: path.to_path_buf(),
        reason,
    };
    let ticket = FileTicket {
        table: file.table,
        partition: file.partition.clone(),
        name: file.record.name.clone(),
    };
    let ticket = encode(&Ticket::File(&ticket)).map_err(|e| lost(e.to_string()))?;
    let mut client = peers.flight(src).map_err(|e| lost(e.to_string()))?;
    let mut stream = client
        .do_get(arrow_flight::Ticket { ticket })
        .await
        .map_err(|s| lost(crate::rpc::client::status_error(src, "do_get", s).to_string()))?
        .into_inner();
    let dir = path
        .parent()
        .ok_or_else(|| StorageError::Index(format!("no directory for {}", path.display())))?;
    let owned = dir.to_path_buf();
    tokio::task::spawn_blocking(move || crate::storage::create_dir_durable(&owned))
        .await
        .map_err(|e| StorageError::Index(e.to_string()))??;
    let result = async {
        let mut out = tokio::fs::File::create(path)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        while let Some(msg) = stream.next().await {
            let msg: FlightData = msg.map_err(|s| {
                lost(crate::rpc::client::status_error(src, "do_get", s).to_string())
            })?;
            out.write_all(&msg.data_body)
                .await
                .map_err(|e| StorageError::io(path, e))?;
        }
        out.sync_all()
            .await
            .map_err(|e| StorageError::io(path, e))?;
        let size = out
            .metadata()
            .await
            .map_err(|e| StorageError::io(path, e))?
            .len();
        if size != file.record.size {
            return Err(lost(format!(
                "got {size} bytes of {}, expected {}",
                file.record.name, file.record.size
            )));
        }
        // The footer check and the directory's fsync block: off the runtime's threads.
        let (path, physical, rows) = (path.to_path_buf(), physical.clone(), file.record.rows);
        tokio::task::spawn_blocking(move || {
            check(&path, &physical, rows)?;
            path.parent().map_or(Ok(()), sync_dir)
        })
        .await
        .map_err(|e| StorageError::Index(e.to_string()))??;
        Ok(size)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(path).await;
    }
    result
}

/// Checks a fetched file's footer: its rows, and its columns against the table's.
fn check(path: &Path, physical: &SchemaRef, rows: u64) -> Result<(), StorageError> {
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    let f = std::fs::File::open(path).map_err(|e| StorageError::io(path, e))?;
    let meta = ArrowReaderMetadata::load(&f, ArrowReaderOptions::new()).map_err(|source| {
        StorageError::Parquet {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let found = meta.metadata().file_metadata().num_rows();
    if u64::try_from(found).ok() != Some(rows) {
        return Err(StorageError::Transfer {
            path: path.to_path_buf(),
            reason: format!("the file holds {found} rows, the master listed {rows}"),
        });
    }
    if columns(meta.schema()) != columns(physical) {
        return Err(StorageError::Transfer {
            path: path.to_path_buf(),
            reason: "the file's columns are not the table's".into(),
        });
    }
    Ok(())
}
