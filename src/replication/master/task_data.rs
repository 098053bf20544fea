//! Task data of replicated writes on a master data node: the rows a transaction appended,
//! kept as `<clusterReplicationWorkDir>/<tid>.task` (an Arrow IPC stream in the table's input
//! schema) until every slave has applied the task.
//!
//! Rows are written to `<tid>.task.tmp` on the blocking pool while the statement runs. With
//! `clusterReplicationSyncPersistence=true` the file is fsynced and renamed into place before
//! the commit, so a committed task always has its data. Otherwise (DolphinDB's default) that
//! happens after the commit, off the statement's path: a crash in between loses the task data,
//! and the slave reports "Missing taskData" for it. Asked before the file is in place, the
//! node answers that it is not persisted yet (S01044) and the slave tries again. A `.tmp` file
//! left by a crash is deleted at start-up.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::storage::StorageError;

/// Whether the data of transaction `tid` is still being written: committed with asynchronous
/// persistence and not yet moved into place. (A crash removes such files at start-up, so after
/// a restart the data is missing, not pending.)
pub fn is_pending(dir: &Path, tid: u64) -> bool {
    tmp_path(dir, tid).exists()
}

/// The file of a task's data.
pub fn task_path(dir: &Path, tid: u64) -> PathBuf {
    dir.join(format!("{tid}.task"))
}

fn tmp_path(dir: &Path, tid: u64) -> PathBuf {
    dir.join(format!("{tid}.task.tmp"))
}

/// Rows on their way into a task data file.
pub struct TaskDataWriter {
    dir: PathBuf,
    tid: u64,
    tx: Option<mpsc::Sender<RecordBatch>>,
    writer: Option<JoinHandle<Result<(), StorageError>>>,
}

impl TaskDataWriter {
    /// Starts `<tid>.task.tmp` in `dir`.
    pub fn create(dir: &Path, tid: u64, schema: SchemaRef) -> Result<Self, StorageError> {
        crate::storage::create_dir_durable(dir)?;
        let path = tmp_path(dir, tid);
        // Created here, not by the writer task: from now on the data counts as pending (see
        // `is_pending`), however soon the transaction commits.
        let file = File::create(&path).map_err(|e| StorageError::io(&path, e))?;
        let (tx, mut rx) = mpsc::channel::<RecordBatch>(4);
        let writer = tokio::task::spawn_blocking(move || {
            let ipc = |e: arrow::error::ArrowError| {
                StorageError::io(&path, std::io::Error::other(e.to_string()))
            };
            let mut w = StreamWriter::try_new(BufWriter::new(file), &schema).map_err(ipc)?;
            while let Some(batch) = rx.blocking_recv() {
                w.write(&batch).map_err(ipc)?;
            }
            w.finish().map_err(ipc)?;
            let file = w
                .into_inner()
                .map_err(ipc)?
                .into_inner()
                .map_err(|e| StorageError::io(&path, e.into_error()))?;
            file.sync_all().map_err(|e| StorageError::io(&path, e))
        });
        Ok(TaskDataWriter {
            dir: dir.to_path_buf(),
            tid,
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    /// Adds rows.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<(), StorageError> {
        let sent = match &self.tx {
            Some(tx) => tx.send(batch).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writer stopped: its error says why.
        self.tx = None;
        match self.writer.take() {
            Some(w) => match w.await {
                Ok(Err(e)) => Err(e),
                Err(e) => Err(joined(e)),
                Ok(Ok(())) => Err(StorageError::Index("task data writer stopped".into())),
            },
            None => Err(StorageError::Index("task data writer stopped".into())),
        }
    }

    /// Finishes the file (fsynced) and moves it to `<tid>.task`.
    pub async fn persist(mut self) -> Result<(), StorageError> {
        self.tx = None;
        if let Some(w) = self.writer.take() {
            w.await.map_err(joined)??;
        }
        let (dir, tid) = (self.dir.clone(), self.tid);
        // The directory's fsync blocks: on the blocking pool.
        tokio::task::spawn_blocking(move || {
            let (from, to) = (tmp_path(&dir, tid), task_path(&dir, tid));
            std::fs::rename(&from, &to).map_err(|e| StorageError::io(&to, e))?;
            crate::storage::sync_dir(&dir)
        })
        .await
        .map_err(joined)??;
        Ok(())
    }
}

impl Drop for TaskDataWriter {
    /// Not persisted: the transaction did not commit, or its task was not queued.
    fn drop(&mut self) {
        if self.writer.is_none() {
            return;
        }
        self.tx = None;
        let path = tmp_path(&self.dir, self.tid);
        if let Some(w) = self.writer.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = w.await;
                    remove(&path);
                });
                return;
            }
        }
        remove(&path);
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot delete task data");
        }
    }
}

/// Deletes a persisted task data file whose transaction did not commit (or was not queued).
pub fn remove_persisted(dir: &Path, tid: u64) {
    remove(&task_path(dir, tid));
}

/// Deletes unfinished task data files (`*.task.tmp`) a crash left in `dir`.
pub fn remove_unfinished(dir: &Path) -> Result<usize, StorageError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(StorageError::io(dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry.map_err(|e| StorageError::io(dir, e))?.path();
        if path.to_string_lossy().ends_with(".task.tmp") {
            std::fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Reads `<tid>.task` on the blocking pool: its schema and its batches, or `None` if there is
/// no such file.
#[allow(clippy::type_complexity)]
pub fn read(
    dir: &Path,
    tid: u64,
) -> Result<Option<(SchemaRef, mpsc::Receiver<Result<RecordBatch, StorageError>>)>, StorageError> {
    let path = task_path(dir, tid);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(&path, e)),
    };
    let ipc = move |e: arrow::error::ArrowError| {
        StorageError::io(&path, std::io::Error::other(e.to_string()))
    };
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::BufReader::new(file), None)
        .map_err(ipc.clone())?;
    let schema = reader.schema();
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        for batch in reader {
            let batch = batch.map_err(&ipc);
            let failed = batch.is_err();
            if tx.blocking_send(batch).is_err() || failed {
                return;
            }
        }
    });
    Ok(Some((schema, rx)))
}

/// Deletes the task data no slave needs any more: of truncated tasks, and of transactions
/// that ended without a task (not committed, or not queued). Returns how many files went.
pub fn collect(dir: &Path, metadata: &crate::controller::client::MetadataView) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let tasks: std::collections::HashMap<u64, bool> = metadata
        .replication()
        .master
        .tasks
        .values()
        .map(|t| (t.tid, t.truncated))
        .collect();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(tid) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".task"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let unneeded = match tasks.get(&tid) {
            Some(truncated) => *truncated,
            None => tid <= metadata.last_tid() && metadata.txn(tid).is_none(),
        };
        if unneeded {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!(
                    "[asyncReplication] Failed to remove task data file {}, with error: {e}. RefId:S01036",
                    entry.path().display()
                ),
            }
        }
    }
    removed
}

/// A writer or blocking task that panicked or was cancelled.
fn joined(e: tokio::task::JoinError) -> StorageError {
    StorageError::Index(format!("task data writer failed: {e}"))
}
