//! What a write transaction on a replicated database records for its replication task, as it
//! runs: the partitions it writes (for grouping), the appended rows as task data
//! ([`super::task_data`]), or the statement of an UPDATE or DELETE. Its commit hands the
//! controller the [`TxnTask`], which queues it in the same raft entry.

use std::collections::BTreeSet;
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::task_data::TaskDataWriter;
use crate::replication::model::{Chunks, OpType, TaskPayload, TxnTask};
use crate::storage::StorageError;

/// The replication task of one write transaction, while it runs.
#[derive(Default)]
pub struct TaskRecorder {
    /// The appended rows (`<tid>.task`), opened with the first rows.
    data: Option<TaskDataWriter>,
    chunks: Chunks,
    /// UPDATE, DELETE or DROP PARTITION: what to replay instead of rows.
    rewrite: Option<(OpType, TaskPayload)>,
}

impl TaskRecorder {
    /// Records the statement of an UPDATE or DELETE of table `db/table`.
    pub fn rewrite(
        &mut self,
        table: String,
        op: OpType,
        filters: Vec<Vec<u8>>,
        update: Option<Vec<(String, Vec<u8>)>>,
    ) {
        self.chunks.tables.insert(table);
        self.rewrite = Some((op, TaskPayload::Rewrite { filters, update }));
    }

    /// Records `ALTER TABLE ... DROP PARTITION` of table `db/table`.
    pub fn drop_partitions(&mut self, table: String, partitions: &BTreeSet<String>) {
        for p in partitions {
            self.chunks.partitions.insert(format!("{table}/{p}"));
        }
        let partitions = partitions.iter().cloned().collect();
        self.rewrite = Some((
            OpType::DropPartition,
            TaskPayload::DropPartitions { partitions },
        ));
    }

    /// Keeps appended rows as the task data of transaction `tid` (in `dir`, in the table's
    /// input `schema`) and notes their partitions of table `db/table`.
    pub async fn append(
        &mut self,
        (dir, tid, schema): (&Path, u64, SchemaRef),
        table: &str,
        batch: &RecordBatch,
        partitions: impl Iterator<Item = &str>,
    ) -> Result<(), StorageError> {
        for p in partitions {
            self.chunks.partitions.insert(format!("{table}/{p}"));
        }
        if self.data.is_none() {
            self.data = Some(TaskDataWriter::create(dir, tid, schema)?);
        }
        match &mut self.data {
            Some(w) => w.write(batch.clone()).await,
            None => Ok(()),
        }
    }

    /// The task to commit with (`rows` written to `db`.`table`), and the task data to persist.
    pub fn finish(self, db: &str, table: &str, rows: u64) -> (TxnTask, Option<TaskDataWriter>) {
        let (op, payload) = self
            .rewrite
            .unwrap_or((OpType::Append, TaskPayload::Append));
        let task = TxnTask {
            op,
            db: db.to_string(),
            table: table.to_string(),
            chunks: self.chunks,
            payload,
            rows,
        };
        (task, self.data)
    }
}
