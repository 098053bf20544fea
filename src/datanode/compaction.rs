//! Background compaction: many small inserts leave many small files in a partition, which makes
//! every later scan slower. When a partition has at least `compaction_min_files` small files,
//! they are merged into one.
//!
//! The merged file is written and fsynced first; the swap is one file-index transaction, so a
//! reader sees either the old files or the new one, never both or neither. Readers that still
//! hold the old files keep them until they finish (see `DataFile`). Compaction takes the
//! table's rewrite lock, so no UPDATE or DELETE claims files while it picks them, and it leaves
//! alone files an unfinished UPDATE or DELETE has claimed. One that publishes (without the lock)
//! while the inputs are read may still replace one of them: then the swap does not happen
//! (`FileIndex::replace_local` swaps only live files), or its old rows would come back.
//!
//! The merged file carries the newest commit index of its inputs, and the inputs are removed at
//! that index: a reader at an older index still reads the inputs it saw before.

use std::sync::Weak;

use arrow::array::{new_null_array, RecordBatch};
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{DataNode, DataNodeError};
use crate::storage::{write_parquet, DataFileRef, RemovedFile, StagedFile, StorageError, TableKey};

pub(super) async fn run(node: Weak<DataNode>) {
    loop {
        let Some(interval) = node.upgrade().map(|n| n.options.compaction_interval) else {
            return;
        };
        tokio::time::sleep(interval).await;
        let Some(node) = node.upgrade() else { return };
        if let Err(e) = node.compact_once().await {
            tracing::warn!(error = %e, "compaction failed");
        }
    }
}

impl DataNode {
    /// One compaction pass over every table; returns the number of partitions compacted.
    pub async fn compact_once(&self) -> Result<usize, DataNodeError> {
        let metadata = self.controller.metadata();
        let mut compacted = 0;
        for db in metadata.databases() {
            for table in db.tables.values() {
                let key = (table.id, table.generation);
                let lock = self.rewrite_lock(table.id);
                let _guard = lock.lock().await;
                let snapshot = self.snapshot(key);
                for (partition, files) in &snapshot.partitions {
                    // A file a transaction is replacing is left to that transaction. One that
                    // was replaced since the snapshot makes the swap fail (see `merge`).
                    let small: Vec<DataFileRef> = files
                        .iter()
                        .filter(|f| (f.record.rows as usize) < self.options.file_rows)
                        .filter(|f| self.claimed([*f]).is_none())
                        .cloned()
                        .collect();
                    if small.len() < self.options.compaction_min_files {
                        continue;
                    }
                    let schema = table.physical_schema();
                    let sort_by = table.sort_column_indices();
                    let index = self.index.clone();
                    let partition = partition.clone();
                    let swapped = tokio::task::spawn_blocking(move || {
                        merge(&index, key, &partition, &small, &schema, &sort_by)
                    })
                    .await??;
                    compacted += usize::from(swapped);
                }
            }
        }
        Ok(compacted)
    }
}

fn merge(
    index: &crate::storage::FileIndex,
    key: TableKey,
    partition: &str,
    files: &[DataFileRef],
    schema: &SchemaRef,
    sort_by: &[usize],
) -> Result<bool, StorageError> {
    let mut batches = Vec::new();
    for f in files {
        batches.extend(read_as(&f.path, schema)?);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!("compact-{nanos}.parquet");
    let path = index.file_path(key, partition, &name);
    let record = write_parquet(&path, schema, &batches, 0, sort_by)?;
    let removes: Vec<RemovedFile> = files
        .iter()
        .map(|f| RemovedFile {
            table: key,
            partition: partition.to_string(),
            name: f.record.name.clone(),
        })
        .collect();
    let commit_index = files
        .iter()
        .map(|f| f.record.commit_index)
        .max()
        .unwrap_or(0);
    let swapped = index.replace_local(
        &[StagedFile {
            table: key,
            partition: partition.to_string(),
            record,
        }],
        &removes,
        commit_index,
    )?;
    if !swapped {
        // An input was replaced while it was read: try again on the next pass.
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove an unused merged file");
        }
        tracing::debug!(
            partition,
            "compaction lost a race with a rewrite; retried later"
        );
        return Ok(false);
    }
    tracing::debug!(partition, files = ?files.iter().map(|f| &f.record.name).collect::<Vec<_>>(), into = name, "compacted partition");
    Ok(true)
}

/// Reads a data file into `schema`: columns are matched by physical name; a column the file
/// lacks (added later) reads as NULL, one the schema lacks (dropped) is left out.
pub fn read_as(
    path: &std::path::Path,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, StorageError> {
    let perr = |source| StorageError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|e| StorageError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(perr)?
        .with_batch_size(64 * 1024)
        .build()
        .map_err(perr)?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| perr(e.into()))?;
        let columns = schema
            .fields()
            .iter()
            .map(|f| match batch.column_by_name(f.name()) {
                Some(c) => c.clone(),
                None => new_null_array(f.data_type(), batch.num_rows()),
            })
            .collect();
        out.push(RecordBatch::try_new(schema.clone(), columns).map_err(|e| perr(e.into()))?);
    }
    Ok(out)
}
