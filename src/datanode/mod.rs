//! A data node: owns partitions stored as Parquet, runs the participant side of write
//! transactions and compacts small files.
//!
//! Write transaction (one SQL statement):
//! 1. `begin` — the controller hands out a `tid`;
//! 2. rows are routed to partitions and staged as fsynced Parquet files;
//! 3. `commit` — the staged files are recorded durably as *prepared* in the file index, then the
//!    controller commits the `tid` through raft: **the commit point**;
//! 4. the prepared files are *published* (one index transaction): readers see all of them at
//!    once.
//!
//! After a crash, prepared transactions are resolved against the controller on start-up:
//! committed ones are published, the others discarded ([`DataNode::open`]).
//!
//! Statements that rewrite partitions (UPDATE, DELETE) and compaction hold the table's rewrite
//! lock, so two of them never replace the same files; appends need no lock.

mod compaction;
mod txn;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::catalog::{NewValuePolicy, NodeId};
use crate::controller::client::ControllerClient;
use crate::controller::metadata::{Command, Metadata, TxnState};
use crate::controller::raft::ControllerError;
use crate::storage::{FileIndex, StorageError, TableFiles, TableKey};

pub use compaction::read_as;
pub use txn::WriteTxn;

/// Errors of the data node.
#[derive(Debug, thiserror::Error)]
pub enum DataNodeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Controller(#[from] ControllerError),
    #[error(transparent)]
    Metadata(#[from] crate::controller::metadata::MetadataError),
    #[error(transparent)]
    Route(#[from] crate::catalog::scheme::RouteError),
    #[error("null value in column \"{column}\" violates not-null constraint")]
    NotNull { column: String },
    #[error("table \"{table}\" of \"{db}\" no longer exists")]
    TableGone { db: String, table: String },
    #[error("unexpected controller answer to {0}")]
    Protocol(&'static str),
    #[error("background task failed: {0}")]
    Task(String),
}

impl DataNodeError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            DataNodeError::Storage(e) => e.sqlstate(),
            DataNodeError::Controller(e) => e.sqlstate(),
            DataNodeError::Metadata(e) => e.sqlstate(),
            DataNodeError::Route(crate::catalog::scheme::RouteError::Incompatible { .. }) => {
                "42804"
            }
            DataNodeError::Route(_) => "23514",
            DataNodeError::NotNull { .. } => "23502",
            DataNodeError::TableGone { .. } => "40001",
            DataNodeError::Protocol(_) | DataNodeError::Task(_) => "XX000",
        }
    }
}

/// Tunables of a data node.
#[derive(Clone, Debug)]
pub struct DataNodeOptions {
    /// `newValuePartitionPolicy`.
    pub new_value_policy: NewValuePolicy,
    /// Rows buffered per partition before a file is written in the background.
    pub file_rows: usize,
    /// A partition with at least this many files is compacted.
    pub compaction_min_files: usize,
    /// How often compaction looks for work.
    pub compaction_interval: Duration,
}

impl Default for DataNodeOptions {
    fn default() -> Self {
        DataNodeOptions {
            new_value_policy: NewValuePolicy::Add,
            file_rows: 256 * 1024,
            compaction_min_files: 8,
            compaction_interval: Duration::from_secs(5),
        }
    }
}

/// A data node.
pub struct DataNode {
    pub id: NodeId,
    home: PathBuf,
    index: Arc<FileIndex>,
    controller: Arc<dyn ControllerClient>,
    options: DataNodeOptions,
    rewrite_locks: Mutex<HashMap<u32, Arc<tokio::sync::Mutex<()>>>>,
    /// Published transactions whose outcome the controller may forget (sent with the next
    /// `BeginTxn`).
    ended: Mutex<Vec<u64>>,
}

impl std::fmt::Debug for DataNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataNode")
            .field("id", &self.id)
            .field("home", &self.home)
            .finish()
    }
}

impl DataNode {
    /// Opens the data node stored under `home`, resolving transactions left in doubt by a
    /// crash, and starts its background work (garbage collection of dropped tables,
    /// compaction).
    pub async fn open(
        id: NodeId,
        home: &Path,
        controller: Arc<dyn ControllerClient>,
        options: DataNodeOptions,
    ) -> Result<Arc<Self>, DataNodeError> {
        let index = Arc::new(FileIndex::open(home)?);
        let node = Arc::new(DataNode {
            id,
            home: home.to_path_buf(),
            index,
            controller,
            options,
            rewrite_locks: Mutex::new(HashMap::new()),
            ended: Mutex::new(Vec::new()),
        });
        node.recover().await?;
        node.collect_garbage(&node.controller.metadata())?;
        tokio::spawn(Self::watch_metadata(Arc::downgrade(&node)));
        tokio::spawn(compaction::run(Arc::downgrade(&node)));
        Ok(node)
    }

    /// Resolves prepared transactions against the controller. This node coordinates its own
    /// transactions, so any of them still active lost its coordinator: abort them first.
    async fn recover(&self) -> Result<(), DataNodeError> {
        self.controller
            .write(Command::AbortCoordinatorTxns {
                coordinator: self.id,
            })
            .await?;
        let metadata = self.controller.metadata();
        let mut ended = Vec::new();
        for txn in self.index.prepared()? {
            let committed = metadata
                .txns
                .get(&txn.tid)
                .is_some_and(|t| t.state == TxnState::Committed);
            if committed {
                tracing::info!(
                    tid = txn.tid,
                    "publishing transaction committed before a crash"
                );
                self.index.publish(txn.tid)?;
                ended.push(txn.tid);
            } else {
                tracing::info!(tid = txn.tid, "discarding transaction that did not commit");
                self.index.discard(txn.tid, &[])?;
            }
        }
        let orphans = self.index.remove_orphans()?;
        if orphans > 0 {
            tracing::info!(orphans, "removed data files of unfinished transactions");
        }
        if !ended.is_empty() {
            self.controller
                .write(Command::EndTxns { tids: ended })
                .await?;
        }
        Ok(())
    }

    /// Drops the files of tables that no longer exist (dropped, truncated).
    fn collect_garbage(&self, metadata: &Metadata) -> Result<(), DataNodeError> {
        let live: std::collections::HashSet<TableKey> = metadata
            .databases
            .values()
            .flat_map(|d| d.tables.values())
            .map(|t| (t.id, t.generation))
            .collect();
        let dropped = self.index.retain_tables(|k| live.contains(&k))?;
        if dropped > 0 {
            tracing::debug!(dropped, "released files of dropped or truncated tables");
        }
        Ok(())
    }

    async fn watch_metadata(node: std::sync::Weak<DataNode>) {
        let Some(mut rx) = node.upgrade().map(|n| n.controller.subscribe()) else {
            return;
        };
        while rx.changed().await.is_ok() {
            let metadata = rx.borrow_and_update().clone();
            let Some(node) = node.upgrade() else { return };
            if let Err(e) = node.collect_garbage(&metadata) {
                tracing::warn!(error = %e, "garbage collection failed");
            }
        }
    }

    /// The controller this node uses.
    pub fn controller(&self) -> &Arc<dyn ControllerClient> {
        &self.controller
    }

    pub fn options(&self) -> &DataNodeOptions {
        &self.options
    }

    /// A consistent snapshot of a table generation's published files.
    pub fn snapshot(&self, key: TableKey) -> Arc<TableFiles> {
        self.index.snapshot(key)
    }

    /// The lock that serialises statements rewriting a table's partitions.
    pub fn rewrite_lock(&self, table_id: u32) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.rewrite_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(table_id).or_default().clone()
    }

    /// Starts a write transaction on one table.
    pub async fn begin(self: &Arc<Self>, db: &str, table: &str) -> Result<WriteTxn, DataNodeError> {
        WriteTxn::begin(self.clone(), db, table).await
    }

    fn take_ended(&self) -> Vec<u64> {
        std::mem::take(&mut *self.ended.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn push_ended(&self, tid: u64) {
        self.ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tid);
    }
}
