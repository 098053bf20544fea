//! A write transaction on one table: route rows to partitions, stage them as Parquet files in
//! the background while more rows arrive, then prepare, commit through the controller and
//! publish. Dropping a transaction that was not committed discards everything it staged.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use tokio::task::JoinHandle;

use super::{DataNode, DataNodeError};
use crate::catalog::scheme::route;
use crate::catalog::{DatabaseDef, TableDef, DIMENSION_PARTITION};
use crate::controller::metadata::{now_ms, Command, CommandResult, TableVersion};
use crate::storage::index::PREPARED_VERSION;
use crate::storage::{
    write_parquet, DataFileRef, PreparedTxn, RemovedFile, StagedFile, StorageError, TableKey,
};

type Pending = JoinHandle<Result<StagedFile, StorageError>>;

/// At most this many files' worth of rows are buffered, and at most this many files are being
/// encoded, per transaction.
const MAX_BUFFERED_FILES: usize = 4;

/// An open write transaction. See the module documentation.
pub struct WriteTxn {
    node: Arc<DataNode>,
    tid: u64,
    db: DatabaseDef,
    table: TableDef,
    key: TableKey,
    physical: SchemaRef,
    buffers: HashMap<String, (Vec<RecordBatch>, usize)>,
    buffered_rows: usize,
    pending: Vec<Pending>,
    staged: Vec<StagedFile>,
    removes: Vec<RemovedFile>,
    seq: u32,
    rows: u64,
    finished: bool,
}

impl WriteTxn {
    pub(super) async fn begin(
        node: Arc<DataNode>,
        db: &str,
        table: &str,
    ) -> Result<Self, DataNodeError> {
        let metadata = node.controller.metadata();
        let (dbdef, tdef) = metadata.table(db, table).ok_or_else(|| {
            crate::controller::metadata::MetadataError::TableNotFound {
                db: db.to_string(),
                table: table.to_string(),
            }
        })?;
        let (dbdef, tdef) = (dbdef.clone(), tdef.clone());
        let ended = node.take_ended();
        let result = node
            .controller
            .write(Command::BeginTxn {
                coordinator: node.id,
                now_ms: now_ms(),
                ended,
            })
            .await?;
        let CommandResult::Tid(tid) = result else {
            return Err(DataNodeError::Protocol("BeginTxn"));
        };
        let physical = tdef.physical_schema();
        Ok(WriteTxn {
            key: (tdef.id, tdef.generation),
            node,
            tid,
            db: dbdef,
            table: tdef,
            physical,
            buffers: HashMap::new(),
            buffered_rows: 0,
            pending: Vec::new(),
            staged: Vec::new(),
            removes: Vec::new(),
            seq: 0,
            rows: 0,
            finished: false,
        })
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
            return self.buffer(DIMENSION_PARTITION.to_string(), batch).await;
        }
        let columns = self.table.partition_column_indices();
        let names = self.table.partition_columns.clone();
        let policy = self.node.options.new_value_policy;
        // The VALUE domains may have grown since the transaction began: route by the latest.
        let levels = self.current_levels();
        let mut routing = route(&levels, &columns, &names, &batch, policy)?;
        if !routing.new_values.is_empty() {
            let mut by_level: HashMap<usize, Vec<_>> = HashMap::new();
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
        for part in routing.parts {
            self.rows += part.batch.num_rows() as u64;
            self.buffer(part.partition, part.batch).await?;
        }
        Ok(())
    }

    fn current_levels(&self) -> Vec<crate::catalog::PartitionLevel> {
        self.node
            .controller
            .metadata()
            .databases
            .get(&self.db.name)
            .map(|d| d.def.levels.clone())
            .unwrap_or_else(|| self.db.levels.clone())
    }

    /// Replaces the published files `old` of `partition` with `rows` (logical schema; may be
    /// empty). The caller holds the table's rewrite lock.
    pub async fn rewrite(
        &mut self,
        partition: &str,
        old: &[DataFileRef],
        rows: Vec<RecordBatch>,
    ) -> Result<(), DataNodeError> {
        for f in old {
            self.removes.push(RemovedFile {
                table: self.key,
                partition: partition.to_string(),
                name: f.record.name.clone(),
            });
        }
        for b in rows.into_iter().filter(|b| b.num_rows() > 0) {
            self.buffer(partition.to_string(), b).await?;
        }
        Ok(())
    }

    /// Buffers rows of a partition; writes a file when a partition has a file's worth of rows.
    /// Memory stays bounded however many partitions a statement touches and however fast rows
    /// arrive: when too many rows are buffered the largest buffer is written early, and when
    /// too many files are being encoded the statement waits for the oldest.
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
        while self.pending.len() > MAX_BUFFERED_FILES {
            let oldest = self.pending.remove(0);
            match oldest.await {
                Ok(Ok(staged)) => self.staged.push(staged),
                Ok(Err(e)) => return Err(e.into()),
                Err(e) => return Err(DataNodeError::Task(e.to_string())),
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
                    first_error.get_or_insert(DataNodeError::Task(e.to_string()));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Makes the transaction durable and visible; returns the number of rows written.
    pub async fn commit(mut self) -> Result<u64, DataNodeError> {
        self.flush().await?;
        self.finished = true;
        let node = self.node.clone();
        if self.staged.is_empty() && self.removes.is_empty() {
            node.push_ended(self.tid);
            return Ok(self.rows);
        }
        let prepared = PreparedTxn {
            version: PREPARED_VERSION,
            tid: self.tid,
            adds: std::mem::take(&mut self.staged),
            removes: std::mem::take(&mut self.removes),
        };
        if let Err(e) = node.index.prepare(&prepared) {
            node.index.discard(self.tid, &prepared.adds)?;
            node.push_ended(self.tid);
            return Err(e.into());
        }
        crate::fault::crash_point("txn-prepared");
        let outcome = node
            .controller
            .write(Command::CommitTxn {
                tid: self.tid,
                tables: vec![TableVersion {
                    db: self.db.name.clone(),
                    table: self.table.name.clone(),
                    table_id: self.table.id,
                    generation: self.table.generation,
                }],
            })
            .await;
        match outcome {
            Ok(CommandResult::Ok) => {}
            Ok(CommandResult::Err(e)) => {
                node.index.discard(self.tid, &prepared.adds)?;
                node.push_ended(self.tid);
                return Err(e.into());
            }
            Ok(_) => return Err(DataNodeError::Protocol("CommitTxn")),
            // In doubt: the prepared record stays and is resolved at the next start.
            Err(e) => return Err(e.into()),
        }
        crate::fault::crash_point("txn-committed");
        node.index.publish(self.tid)?;
        node.push_ended(self.tid);
        Ok(self.rows)
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Abort: wait for files still being written, then delete everything staged.
        let node = self.node.clone();
        let tid = self.tid;
        let pending = std::mem::take(&mut self.pending);
        let mut staged = std::mem::take(&mut self.staged);
        node.push_ended(tid);
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
