//! The participant side of a write transaction on one data node: rows of the partitions this
//! node owns are buffered and written as Parquet files in the background while more arrive,
//! then recorded as *prepared* in the file index, and finally *published* (or discarded).
//!
//! A staging dropped before it was prepared deletes everything it wrote. Once prepared, its
//! fate is the transaction's: published when the controller says committed, discarded when the
//! controller no longer knows the transaction ([`super::DataNode`] resolves it).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use tokio::task::JoinHandle;

use super::{DataNode, DataNodeError};
use crate::catalog::TableDef;
use crate::storage::index::PREPARED_VERSION;
use crate::storage::{
    write_parquet, DataFileRef, FileRecord, PreparedTxn, RemovedFile, StagedFile, StorageError,
    TableKey,
};

type Pending = JoinHandle<Result<StagedFile, StorageError>>;

/// At most this many files' worth of rows are buffered, and at most this many files are being
/// encoded, per transaction.
const MAX_BUFFERED_FILES: usize = 4;

/// What a staging holds; the coordinator checks it against what it sent before committing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StagedCounts {
    pub rows: u64,
    pub rewrites: u64,
}

/// One transaction's files on this node. See the module documentation.
pub struct Staging {
    node: Arc<DataNode>,
    tid: u64,
    table: TableDef,
    key: TableKey,
    physical: SchemaRef,
    buffers: HashMap<String, (Vec<RecordBatch>, usize)>,
    buffered_rows: usize,
    pending: Vec<Pending>,
    staged: Vec<StagedFile>,
    removes: Vec<RemovedFile>,
    seq: u32,
    counts: StagedCounts,
    /// The files recorded as prepared (kept to discard them if the commit fails).
    prepared: Option<Vec<StagedFile>>,
    finished: bool,
    /// Every published file of the table here is removed ([`Self::clear_table`]).
    cleared: bool,
}

impl Staging {
    pub(super) fn new(node: Arc<DataNode>, tid: u64, table: TableDef) -> Self {
        Staging {
            key: (table.id, table.generation),
            physical: table.physical_schema(),
            node,
            tid,
            table,
            buffers: HashMap::new(),
            buffered_rows: 0,
            pending: Vec::new(),
            staged: Vec::new(),
            removes: Vec::new(),
            seq: 0,
            counts: StagedCounts::default(),
            prepared: None,
            finished: false,
            cleared: false,
        }
    }

    pub fn tid(&self) -> u64 {
        self.tid
    }

    pub fn table(&self) -> &TableDef {
        &self.table
    }

    pub fn counts(&self) -> StagedCounts {
        self.counts
    }

    /// Adds rows (logical schema) of one partition. Memory stays bounded however many
    /// partitions a statement touches and however fast rows arrive: when too many rows are
    /// buffered the largest buffer is written early, and when too many files are being
    /// encoded the caller waits for the oldest.
    pub async fn add(
        &mut self,
        partition: String,
        logical: RecordBatch,
    ) -> Result<(), DataNodeError> {
        self.counts.rows += logical.num_rows() as u64;
        self.buffer(partition, logical).await
    }

    /// Stages a data file of another cluster's data node (a replicated APPEND; see
    /// [`crate::replication::slave::files`]), fetched from `src` as it is, in the background like a file being
    /// encoded.
    pub async fn adopt(
        &mut self,
        src: String,
        file: crate::replication::protocol::ShippedFile,
        seed: bool,
    ) -> Result<(), DataNodeError> {
        self.counts.rows += file.record.rows;
        self.seq += 1;
        let name = format!("{}-{}.parquet", self.tid, self.seq);
        let path = self.node.index.file_path(self.key, &file.partition, &name);
        let node = self.node.clone();
        let (tid, table, physical) = (self.tid, self.key, self.physical.clone());
        self.pending.push(tokio::spawn(async move {
            use crate::replication::slave::files;
            let peers = node.master_peers();
            let size = if seed {
                let cache = files::cache_path(&node.options.replication_dir, &file);
                let fetched = Some(&node.received.seed_fetched);
                files::fetch_cached(peers, &src, &file, &cache, &path, &physical, fetched).await?
            } else {
                files::fetch(peers, &src, &file, &path, &physical).await?
            };
            node.received.files.fetch_add(1, Ordering::Relaxed);
            node.received.bytes.fetch_add(size, Ordering::Relaxed);
            Ok(StagedFile {
                table,
                partition: file.partition,
                record: FileRecord {
                    name,
                    size,
                    rows: file.record.rows,
                    tid,
                    stats: file.record.stats,
                    commit_index: 0,
                    removed: None,
                },
            })
        }));
        self.wait_pending().await
    }

    /// Removes every published file of the table on this node, or of its partitions `only`
    /// (once per transaction): a seed or repair replaces them by the master's.
    pub fn clear_table(
        &mut self,
        only: Option<&std::collections::BTreeSet<String>>,
    ) -> Result<(), DataNodeError> {
        if self.cleared {
            return Ok(());
        }
        // Every transaction committed before is published first: files it publishes later
        // would escape the clear and come back beside the seed's.
        let removes: Vec<RemovedFile> = self
            .node
            .snapshot_latest(self.key)?
            .files()
            .filter(|f| only.is_none_or(|only| only.contains(&f.partition)))
            .map(|f| RemovedFile {
                table: self.key,
                partition: f.partition.clone(),
                name: f.record.name.clone(),
            })
            .collect();
        self.node.index.claim(self.tid, &removes)?;
        self.removes.extend(removes);
        self.cleared = true;
        Ok(())
    }

    /// Counts a DML share received from the coordinator (whether or not it changed rows here).
    pub fn count_rewrite(&mut self) {
        self.counts.rewrites += 1;
    }

    /// Replaces the published files `old` of `partition` with `rows` (logical schema; may be
    /// empty). The caller holds the table's rewrite lock.
    pub async fn rewrite(
        &mut self,
        partition: &str,
        old: &[DataFileRef],
        rows: Vec<RecordBatch>,
    ) -> Result<(), DataNodeError> {
        let removes: Vec<RemovedFile> = old
            .iter()
            .map(|f| RemovedFile {
                table: self.key,
                partition: partition.to_string(),
                name: f.record.name.clone(),
            })
            .collect();
        self.node.index.claim(self.tid, &removes)?;
        tracing::debug!(tid = self.tid, partition, old = ?removes.iter().map(|r| &r.name).collect::<Vec<_>>(), rows = rows.iter().map(|b| b.num_rows()).sum::<usize>(), "staged a rewrite");
        self.removes.extend(removes);
        for b in rows.into_iter().filter(|b| b.num_rows() > 0) {
            self.buffer(partition.to_string(), b).await?;
        }
        Ok(())
    }

    async fn buffer(
        &mut self,
        partition: String,
        logical: RecordBatch,
    ) -> Result<(), DataNodeError> {
        let physical = RecordBatch::try_new(self.physical.clone(), logical.columns().to_vec())
            .map_err(|e| DataNodeError::Task(format!("batch does not match the table: {e}")))?;
        let file_rows = self.node.options.file_rows;
        self.buffered_rows += physical.num_rows();
        let entry = self.buffers.entry(partition.clone()).or_default();
        entry.1 += physical.num_rows();
        entry.0.push(physical);
        let full = if entry.1 >= file_rows {
            Some(partition)
        } else if self.buffered_rows > MAX_BUFFERED_FILES * file_rows {
            self.buffers
                .iter()
                .max_by_key(|(_, (_, rows))| *rows)
                .map(|(p, _)| p.clone())
        } else {
            None
        };
        if let Some(partition) = full {
            let (batches, rows) = self.buffers.remove(&partition).unwrap_or_default();
            self.buffered_rows -= rows;
            self.spawn_write(partition, batches);
        }
        self.wait_pending().await
    }

    /// Waits for the oldest files being written until at most [`MAX_BUFFERED_FILES`] are.
    async fn wait_pending(&mut self) -> Result<(), DataNodeError> {
        while self.pending.len() > MAX_BUFFERED_FILES {
            let oldest = self.pending.remove(0);
            match oldest.await {
                Ok(Ok(staged)) => self.staged.push(staged),
                Ok(Err(e)) => return Err(e.into()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Encodes a file on the blocking pool, so parsing and encoding overlap.
    fn spawn_write(&mut self, partition: String, batches: Vec<RecordBatch>) {
        self.seq += 1;
        let name = format!("{}-{}.parquet", self.tid, self.seq);
        let path = self.node.index.file_path(self.key, &partition, &name);
        let schema = self.physical.clone();
        let (tid, table) = (self.tid, self.key);
        let sort_by = self.table.sort_column_indices();
        self.pending.push(tokio::task::spawn_blocking(move || {
            let record = write_parquet(&path, &schema, &batches, tid, &sort_by)?;
            Ok(StagedFile {
                table,
                partition,
                record,
            })
        }));
    }

    async fn flush(&mut self) -> Result<(), DataNodeError> {
        self.buffered_rows = 0;
        let mut buffers: Vec<_> = self.buffers.drain().collect();
        buffers.sort_by(|a, b| a.0.cmp(&b.0));
        for (partition, (batches, _)) in buffers {
            self.spawn_write(partition, batches);
        }
        let mut first_error = None;
        for handle in std::mem::take(&mut self.pending) {
            match handle.await {
                Ok(Ok(staged)) => self.staged.push(staged),
                Ok(Err(e)) => {
                    first_error.get_or_insert(DataNodeError::Storage(e));
                }
                Err(e) => {
                    first_error.get_or_insert(e.into());
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Writes the remaining files and records them durably as prepared. Returns `false` (and
    /// records nothing) when the transaction changed nothing on this node.
    ///
    /// Run it to the end (in a task of its own if its caller may be dropped): dropped after the
    /// prepare record was written, the staging would delete the prepared transaction's files.
    pub async fn prepare(&mut self) -> Result<bool, DataNodeError> {
        self.flush().await?;
        if self.staged.is_empty() && self.removes.is_empty() {
            self.finished = true;
            return Ok(false);
        }
        let prepared = PreparedTxn {
            version: PREPARED_VERSION,
            tid: self.tid,
            adds: std::mem::take(&mut self.staged),
            removes: std::mem::take(&mut self.removes),
        };
        // A file-index commit fsyncs: on the blocking pool, not on one of the runtime's
        // (two, on two cores) worker threads.
        let index = self.node.index.clone();
        let (prepared, result) = tokio::task::spawn_blocking(move || {
            let result = index.prepare(&prepared);
            (prepared, result)
        })
        .await?;
        if let Err(e) = result {
            self.node.index.discard(self.tid, &prepared.adds)?;
            self.finished = true;
            return Err(e.into());
        }
        self.prepared = Some(prepared.adds);
        self.finished = true;
        Ok(true)
    }

    /// Makes a prepared transaction visible (after the controller committed it at
    /// `commit_index`).
    pub async fn publish(&mut self, commit_index: u64) -> Result<(), DataNodeError> {
        self.prepared = None;
        self.node.publish_prepared(self.tid, commit_index).await
    }

    /// Discards a prepared transaction (the controller refused the commit).
    pub fn discard(&mut self) -> Result<(), DataNodeError> {
        let adds = self.prepared.take().unwrap_or_default();
        Ok(self.node.index.discard(self.tid, &adds)?)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Abort: wait for files still being written, then delete everything staged.
        let node = self.node.clone();
        let tid = self.tid;
        let pending = std::mem::take(&mut self.pending);
        let mut staged = std::mem::take(&mut self.staged);
        let cleanup = async move {
            for h in pending {
                if let Ok(Ok(s)) = h.await {
                    staged.push(s);
                }
            }
            if let Err(e) = node.index.discard(tid, &staged) {
                tracing::warn!(tid, error = %e, "cannot discard aborted transaction's files");
            }
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(cleanup);
        }
    }
}
