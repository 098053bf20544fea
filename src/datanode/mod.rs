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
mod staging;
mod txn;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::catalog::{NewValuePolicy, NodeId, TableDef};
use crate::controller::client::ControllerClient;
use crate::controller::client::MetadataView;
use crate::controller::error::ControllerError;
use crate::controller::metadata::{now_ms, Command, CommandResult, TxnState};
use crate::lock;
use crate::replication::master::task_data::{self, TaskDataWriter};
use crate::replication::slave::files::Received;
use crate::rpc::client::Peers;
use crate::sqlstate::{ErrorCode, SqlState};
use crate::storage::{DataFileRef, FileIndex, StorageError, TableFiles, TableKey};

pub use compaction::read_as;
pub use staging::{StagedCounts, Staging};
pub use txn::{
    AdoptRequest, PrepareReply, StageRequest, TableAt, TidRequest, WriteTxn, ABORT, ADOPT, PREPARE,
    PUBLISH,
};

/// Errors of the data node.
#[derive(Debug, thiserror::Error)]
pub enum DataNodeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Controller(#[from] ControllerError),
    #[error(transparent)]
    Metadata(#[from] crate::controller::error::MetadataError),
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
    #[error("data node {0} is not known to the controller")]
    UnknownNode(NodeId),
    #[error(transparent)]
    Rpc(Box<crate::rpc::RpcError>),
    #[error("data node {node} at {addr} lost rows of the transaction (sent {sent_rows}, it holds {staged_rows}); it probably restarted")]
    ParticipantLost {
        node: NodeId,
        addr: String,
        sent_rows: u64,
        staged_rows: u64,
    },
    #[error("partition {partition} of \"{db}\" belongs to another data node")]
    Misrouted { db: String, partition: String },
    /// The metadata did not reach the applied index a request needed (the message keeps the
    /// word operators know).
    #[error("this data node's metadata did not reach version {0} in time")]
    Stale(u64),
    /// The controller did not answer the commit: the transaction may have committed or not.
    /// It is settled later either way ([`DataNode::settle_in_doubt`]); the client must check
    /// before repeating it.
    #[error("the outcome of transaction {tid} is unknown: it may have committed ({source})")]
    InDoubt {
        tid: u64,
        #[source]
        source: ControllerError,
    },
}

/// A task of ours that panicked or was cancelled (a blocking write, a commit run to its end).
impl From<tokio::task::JoinError> for DataNodeError {
    fn from(e: tokio::task::JoinError) -> Self {
        DataNodeError::Task(e.to_string())
    }
}

impl ErrorCode for DataNodeError {
    fn sqlstate(&self) -> SqlState {
        match self {
            DataNodeError::Storage(e) => e.sqlstate(),
            DataNodeError::Controller(e) => e.sqlstate(),
            DataNodeError::Metadata(e) => e.sqlstate(),
            DataNodeError::Route(e) => e.sqlstate(),
            DataNodeError::NotNull { .. } => SqlState::NOT_NULL_VIOLATION,
            DataNodeError::TableGone { .. } => SqlState::SERIALIZATION_FAILURE,
            DataNodeError::Protocol(_)
            | DataNodeError::Task(_)
            | DataNodeError::UnknownNode(_)
            | DataNodeError::Misrouted { .. } => SqlState::INTERNAL_ERROR,
            DataNodeError::Rpc(e) => e.sqlstate(),
            DataNodeError::ParticipantLost { .. } | DataNodeError::Stale(_) => {
                SqlState::SERIALIZATION_FAILURE
            }
            DataNodeError::InDoubt { .. } => SqlState::TRANSACTION_RESOLUTION_UNKNOWN,
        }
    }

    /// A transaction that ran into a concurrent change or lost a participant may simply be run
    /// again; one whose commit is in doubt may not (it may have committed).
    fn retryable(&self) -> bool {
        match self {
            DataNodeError::Storage(e) => e.retryable(),
            DataNodeError::Controller(e) => e.retryable(),
            DataNodeError::Metadata(e) => e.retryable(),
            DataNodeError::Route(e) => e.retryable(),
            DataNodeError::Rpc(e) => e.retryable(),
            DataNodeError::TableGone { .. }
            | DataNodeError::ParticipantLost { .. }
            | DataNodeError::Stale(_) => true,
            DataNodeError::NotNull { .. }
            | DataNodeError::Protocol(_)
            | DataNodeError::Task(_)
            | DataNodeError::UnknownNode(_)
            | DataNodeError::Misrouted { .. }
            | DataNodeError::InDoubt { .. } => false,
        }
    }
}

/// How often decided transactions are settled (see [`DataNode::resolve`]).
const RESOLVE_INTERVAL: Duration = Duration::from_secs(1);

/// How many transactions a data node begins in one controller write (see
/// [`DataNode::next_tid`]).
pub const TIDS_AHEAD: u64 = 16;

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
    /// How long files removed by a rewrite or compaction stay readable by queries at older
    /// applied indexes (a query reading at an older one fails with "snapshot too old").
    pub snapshot_retention: Duration,
    /// `clusterReplicationWorkDir`: where task data of replicated writes is kept.
    pub replication_dir: PathBuf,
    /// `clusterReplicationSyncPersistence`: task data is durable before the commit.
    pub replication_sync: bool,
    /// `clusterReplicationExecutionUsername` / `Password`: who applies replication tasks
    /// (slave).
    pub replication_user: (String, String),
    /// `clusterReplicationWorkerNum`: replication tasks applied at once (slave).
    pub replication_workers: usize,
    /// `clusterReplicationSeedRateMB`: bytes per second this node sends slaves' seeds at, at
    /// most (master); 0 = unlimited.
    pub seed_rate: u64,
    /// How a slave's node reaches the master's data nodes, when not with its own peers
    /// (over TLS with `enableClusterReplicationSSL`).
    pub master_peers: Option<Arc<Peers>>,
    /// `maxMemSize`, `memLimitOfQueryResult`, `maxCopyLineSize`: what the node's queries and
    /// COPYs may take.
    pub limits: crate::config::Limits,
}

impl Default for DataNodeOptions {
    fn default() -> Self {
        DataNodeOptions {
            new_value_policy: NewValuePolicy::Add,
            file_rows: 256 * 1024,
            compaction_min_files: 8,
            compaction_interval: Duration::from_secs(5),
            snapshot_retention: Duration::from_secs(60),
            replication_dir: PathBuf::from("clusterReplication"),
            replication_sync: false,
            replication_user: ("admin".into(), "123456".into()),
            replication_workers: 4,
            seed_rate: 0,
            master_peers: None,
            limits: crate::config::Limits::default(),
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
    /// `BeginTxn` or `CommitTxn`).
    ended: Mutex<Vec<u64>>,
    /// Transaction ids begun in the controller for this node and not handed out yet.
    tids: Mutex<Vec<std::ops::Range<u64>>>,
    /// Clients of the other nodes.
    pub(crate) peers: Arc<Peers>,
    /// Transactions coordinated elsewhere that stage rows here, until prepared.
    remote_txns: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<Staging>>>>,
    /// Others' committed transactions waiting for this node at the last resolve pass.
    seen_committed: Mutex<BTreeSet<u64>>,
    /// Transactions coordinated here whose commit went unanswered, with the task data they
    /// are to write once committed (see [`settle_in_doubt`](Self::settle_in_doubt)).
    in_doubt: Mutex<BTreeMap<u64, Option<TaskDataWriter>>>,
    /// How this node (a slave's) received replicated APPENDs.
    pub received: Received,
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
        peers: Arc<Peers>,
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
            tids: Mutex::new(Vec::new()),
            peers,
            remote_txns: Mutex::new(HashMap::new()),
            seen_committed: Mutex::new(BTreeSet::new()),
            in_doubt: Mutex::new(BTreeMap::new()),
            received: Received::default(),
        });
        node.recover().await?;
        node.collect_garbage(&node.controller.metadata())?;
        tokio::spawn(Self::watch_metadata(Arc::downgrade(&node)));
        tokio::spawn(Self::resolve_periodically(Arc::downgrade(&node)));
        tokio::spawn(compaction::run(Arc::downgrade(&node)));
        Ok(node)
    }

    /// Resolves prepared transactions against the controller. This node coordinates its own
    /// transactions, so any of them still active lost its coordinator: abort them first.
    async fn recover(&self) -> Result<(), DataNodeError> {
        // A controller group that is electing or overloaded is waited for: a data node that
        // gave up would stay down until restarted by hand.
        loop {
            let settled = match self
                .controller
                .write(Command::AbortCoordinatorTxns {
                    coordinator: self.id,
                })
                .await
            {
                Ok(_) => self.resolve(&self.controller.metadata(), true).await,
                Err(e) => Err(e.into()),
            };
            match settled {
                Ok(()) => break,
                Err(DataNodeError::Controller(ControllerError::Unavailable { reason })) => {
                    tracing::warn!(%reason, "the controller is unavailable; waiting for it to recover prepared transactions");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
        let unfinished = task_data::remove_unfinished(&self.options.replication_dir)?;
        if unfinished > 0 {
            tracing::info!(unfinished, "removed unfinished task data files");
        }
        let orphans = self.index.remove_orphans()?;
        if orphans > 0 {
            tracing::info!(orphans, "removed data files of unfinished transactions");
        }
        Ok(())
    }

    /// Settles this node's prepared transactions that the controller has decided: publishes
    /// the committed ones and discards those it no longer knows (aborted). A running node
    /// leaves its own transactions, and for one pass others' just-committed ones, to their
    /// coordinator, which publishes them in the same breath as the commit; a transaction
    /// still waiting for this node on the next pass is settled here. At `startup` everything
    /// decided is settled at once.
    async fn resolve(&self, metadata: &MetadataView, startup: bool) -> Result<(), DataNodeError> {
        let waiting: BTreeSet<u64> = metadata
            .txns()
            .filter(|(_, t)| t.state == TxnState::Committed)
            .filter(|(_, t)| {
                if startup {
                    // Empty `pending`: committed before participants were recorded.
                    t.pending.contains(&self.id)
                        || (t.pending.is_empty() && t.coordinator == self.id)
                } else {
                    t.pending.contains(&self.id) && t.coordinator != self.id
                }
            })
            .map(|(tid, _)| tid)
            .collect();
        let ripe = if startup {
            waiting
        } else {
            let mut seen = crate::lock(&self.seen_committed);
            let ripe = waiting.intersection(&seen).copied().collect();
            *seen = waiting;
            ripe
        };
        let mut published = Vec::new();
        let mut prepared = BTreeSet::new();
        for txn in self.index.prepared()? {
            prepared.insert(txn.tid);
            match metadata.txn(txn.tid) {
                Some(t) if ripe.contains(&txn.tid) => {
                    tracing::info!(tid = txn.tid, "publishing a committed transaction");
                    self.index.publish(txn.tid, t.committed_at)?;
                    published.push(txn.tid);
                }
                Some(_) => {}
                None if txn.tid <= metadata.last_tid() => {
                    tracing::info!(
                        tid = txn.tid,
                        "discarding a transaction that did not commit"
                    );
                    self.index.discard(txn.tid, &[])?;
                }
                // Begun after this copy of the metadata: too early to tell.
                None => {}
            }
        }
        // Waiting for this node, which published it already (the answer was lost).
        published.extend(ripe.iter().filter(|tid| !prepared.contains(tid)));
        // Stagings of transactions the controller forgot (their coordinator gave up).
        crate::lock(&self.remote_txns)
            .retain(|tid, _| metadata.txn(*tid).is_some() || *tid > metadata.last_tid());
        for tid in published {
            self.controller
                .write(Command::Published {
                    tid,
                    nodes: vec![self.id],
                })
                .await?;
        }
        Ok(())
    }

    /// Drops the files of tables that no longer exist (dropped, truncated).
    fn collect_garbage(&self, metadata: &MetadataView) -> Result<(), DataNodeError> {
        // A table dropped or truncated after a slave's pending cut stays for its seed.
        let pinned = metadata.replication().pinned_tables();
        let live: std::collections::HashSet<TableKey> = metadata
            .databases()
            .flat_map(|d| d.tables.values())
            .map(|t| (t.id, t.generation))
            .chain(pinned)
            .collect();
        let dropped = self.index.retain_tables(|k| live.contains(&k))?;
        if dropped > 0 {
            tracing::debug!(dropped, "released files of dropped or truncated tables");
        }
        Ok(())
    }

    /// Deletes the files fetched for seeds once no seed is left to install (slave).
    fn drop_seed_cache(&self, metadata: &MetadataView) {
        use crate::replication::model::SeedState;
        let dir = self
            .options
            .replication_dir
            .join(crate::replication::slave::files::SEED_CACHE);
        let pending = metadata
            .replication()
            .slave
            .seeds
            .values()
            .any(|s| s.state != SeedState::Done);
        if !pending && dir.exists() {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    tracing::debug!(dir = %dir.display(), "deleted the files fetched for seeds")
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot delete the files fetched for seeds")
                }
            }
        }
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

    /// Settles decided transactions once a second (see [`resolve`](Self::resolve)), deletes
    /// removed files past their retention and task data no slave needs any more.
    async fn resolve_periodically(node: std::sync::Weak<DataNode>) {
        let mut tick = tokio::time::interval(RESOLVE_INTERVAL);
        loop {
            tick.tick().await;
            let Some(node) = node.upgrade() else { return };
            // A slave's seed reads the files of its cut: they stay while it is pending.
            let pinned = node.controller.metadata().replication().pinned_indexes();
            match node.index.purge(node.options.snapshot_retention, &pinned) {
                Ok(0) => {}
                Ok(n) => tracing::debug!(files = n, "deleted removed files past retention"),
                Err(e) => tracing::warn!(error = %e, "cannot delete removed files"),
            }
            let metadata = node.controller.metadata();
            node.drop_seed_cache(&metadata);
            let removed = task_data::collect(&node.options.replication_dir, &metadata);
            if removed > 0 {
                tracing::debug!(removed, "deleted task data every slave has applied");
            }
            node.settle_in_doubt().await;
            if node.has_undecided(&metadata) {
                if let Err(e) = node.resolve(&metadata, false).await {
                    tracing::warn!(error = %e, "cannot resolve prepared transactions");
                }
            }
        }
    }

    /// Decides the transactions coordinated here whose commit went unanswered (the controller
    /// leader changed or could not be reached): aborts each that is still active, or
    /// publishes this node's share of one that committed (and writes its task data, if that
    /// was left to after the commit). The other participants settle theirs by
    /// [`resolve`](Self::resolve) once the outcome is recorded. Until then the prepared files
    /// keep their claims, so nothing else rewrites the same files.
    async fn settle_in_doubt(&self) {
        let tids: Vec<u64> = lock(&self.in_doubt).keys().copied().collect();
        for tid in tids {
            match self.settle(tid).await {
                Ok(()) => {
                    lock(&self.in_doubt).remove(&tid);
                }
                Err(e) => tracing::debug!(tid, error = %e, "cannot settle a transaction yet"),
            }
        }
    }

    async fn settle(&self, tid: u64) -> Result<(), DataNodeError> {
        match self.controller.write(Command::AbortTxn { tid }).await? {
            CommandResult::Committed { commit_index, .. } => {
                tracing::info!(tid, "publishing a transaction whose commit went unanswered");
                self.index.publish(tid, commit_index)?;
                let data = lock(&self.in_doubt).get_mut(&tid).and_then(Option::take);
                if let Some(data) = data {
                    if let Err(e) = data.persist().await {
                        tracing::error!(tid, error = %e, "[asyncReplication] Failed to write task {tid}, with error: {e}. RefId:S01035");
                    }
                }
                self.controller
                    .write(Command::Published {
                        tid,
                        nodes: vec![self.id],
                    })
                    .await?;
            }
            CommandResult::Err(e) => return Err(e.into()),
            _ => {
                tracing::info!(tid, "aborted a transaction whose commit went unanswered");
                task_data::remove_persisted(&self.options.replication_dir, tid);
                self.index.discard(tid, &[])?;
            }
        }
        Ok(())
    }

    /// Remembers a transaction coordinated here whose commit went unanswered, with its task
    /// data if that was to be written after the commit.
    fn push_in_doubt(&self, tid: u64, task_data: Option<TaskDataWriter>) {
        lock(&self.in_doubt).insert(tid, task_data);
    }

    /// Whether some prepared or staged transaction of another coordinator may have been
    /// decided (cheap: checked on every metadata change).
    fn has_undecided(&self, metadata: &MetadataView) -> bool {
        let staged = !crate::lock(&self.remote_txns).is_empty();
        let waiting = metadata
            .txns()
            .any(|(_, t)| t.state == TxnState::Committed && t.pending.contains(&self.id));
        staged || waiting || self.index.has_prepared()
    }

    /// The staging of a transaction coordinated by another node (created on first use).
    pub fn remote_staging(
        self: &Arc<Self>,
        tid: u64,
        table: &TableDef,
    ) -> Arc<tokio::sync::Mutex<Staging>> {
        let mut remote = crate::lock(&self.remote_txns);
        remote
            .entry(tid)
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Staging::new(
                    self.clone(),
                    tid,
                    table.clone(),
                )))
            })
            .clone()
    }

    /// Prepares a transaction coordinated elsewhere (`dn.prepare`).
    pub async fn prepare_remote(&self, tid: u64) -> Result<PrepareReply, DataNodeError> {
        let staging = crate::lock(&self.remote_txns).remove(&tid);
        let Some(staging) = staging else {
            return Ok(PrepareReply {
                counts: StagedCounts::default(),
                prepared: false,
            });
        };
        // Run to the end even if the caller stops waiting (it timed out, its connection
        // dropped): a staging dropped between the index's prepare record and its own note of
        // it would delete the files of a prepared transaction.
        tokio::spawn(async move {
            let mut staging = staging.lock().await;
            let prepared = staging.prepare().await?;
            crate::fault::crash_point("participant-prepared");
            Ok(PrepareReply {
                counts: staging.counts(),
                prepared,
            })
        })
        .await?
    }

    /// Publishes a prepared transaction committed at `commit_index` (`dn.publish`, and the
    /// coordinator's own share); idempotent.
    pub async fn publish_prepared(&self, tid: u64, commit_index: u64) -> Result<(), DataNodeError> {
        // The file-index commit fsyncs: on the blocking pool.
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || index.publish(tid, commit_index)).await??;
        Ok(())
    }

    /// Publishes every transaction prepared here that `metadata` shows committed at or before
    /// `up_to`. Publishing a committed transaction is always allowed, so a reader does this
    /// instead of waiting for the transaction's coordinator.
    pub fn publish_committed(
        &self,
        metadata: &MetadataView,
        up_to: u64,
    ) -> Result<(), DataNodeError> {
        for tid in self.index.prepared_tids() {
            if let Some(t) = metadata.txn(tid) {
                if t.state == TxnState::Committed && t.committed_at <= up_to {
                    self.index.publish(tid, t.committed_at)?;
                }
            }
        }
        Ok(())
    }

    /// The files of a table generation a reader at applied index `at` sees: every transaction
    /// committed at or before `at` and no other, whichever node coordinated it and whether or
    /// not its coordinator has published it yet. This node's metadata must have applied `at`.
    pub fn snapshot_at(&self, key: TableKey, at: u64) -> Result<Vec<DataFileRef>, DataNodeError> {
        let metadata = self.controller.metadata();
        if metadata.applied_index() < at {
            return Err(DataNodeError::Stale(at));
        }
        self.publish_committed(&metadata, at)?;
        Ok(self.index.snapshot(key).visible_at(at)?)
    }

    /// The latest files of a table generation, after publishing every transaction known to
    /// have committed (what a statement that replaces files reads).
    pub fn snapshot_latest(&self, key: TableKey) -> Result<Arc<TableFiles>, DataNodeError> {
        self.publish_committed(&self.controller.metadata(), u64::MAX)?;
        Ok(self.index.snapshot(key))
    }

    /// The transaction holding a claim on one of `files` (it is replacing them), if any.
    pub fn claimed<'a>(&self, files: impl IntoIterator<Item = &'a DataFileRef>) -> Option<u64> {
        self.index.claimed(files)
    }

    /// Notified whenever a transaction releases its claims.
    pub fn claims_released(&self) -> &tokio::sync::Notify {
        self.index.released()
    }

    /// Drops a transaction coordinated elsewhere (`dn.abort`), prepared or not.
    pub fn abort_remote(&self, tid: u64) -> Result<(), DataNodeError> {
        crate::lock(&self.remote_txns).remove(&tid);
        Ok(self.index.discard(tid, &[])?)
    }

    /// Waits until this node's metadata has applied `index` (rows routed by a coordinator
    /// are routed here by the same partition domains).
    pub async fn wait_applied(&self, index: u64) -> Result<MetadataView, DataNodeError> {
        let mut rx = self.controller.subscribe();
        let reached = tokio::time::timeout(
            Duration::from_secs(10),
            rx.wait_for(|m| m.applied_index() >= index),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if reached {
            Ok(self.controller.metadata())
        } else {
            Err(DataNodeError::Stale(index))
        }
    }

    /// The peers this node calls.
    pub fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    /// The peers a slave's node fetches task data and files from the master's through.
    pub fn master_peers(&self) -> &Arc<Peers> {
        self.options.master_peers.as_ref().unwrap_or(&self.peers)
    }

    /// The controller this node uses.
    pub fn controller(&self) -> &Arc<dyn ControllerClient> {
        &self.controller
    }

    /// The index of this node's data files.
    pub fn index(&self) -> &FileIndex {
        &self.index
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
        let mut locks = crate::lock(&self.rewrite_locks);
        locks.entry(table_id).or_default().clone()
    }

    /// Starts a write transaction on one table.
    pub async fn begin(self: &Arc<Self>, db: &str, table: &str) -> Result<WriteTxn, DataNodeError> {
        WriteTxn::begin(self.clone(), db, table).await
    }

    /// Writes a command that carries this node's ended transactions (`BeginTxn`, `CommitTxn`).
    /// A failed write gives them back, to go with the next one (if it was applied after all,
    /// ending them again changes nothing).
    async fn write_with_ended(
        &self,
        cmd: impl FnOnce(Vec<u64>) -> Command,
    ) -> Result<CommandResult, ControllerError> {
        let ended = std::mem::take(&mut *lock(&self.ended));
        let result = self.controller.write(cmd(ended.clone())).await;
        if result.is_err() {
            lock(&self.ended).extend(ended);
        }
        result
    }

    /// A transaction id for a new transaction: the next of those begun ahead for this node,
    /// beginning [`TIDS_AHEAD`] more through the controller when none is left. Ids begun
    /// ahead are active transactions like any other: if this node restarts before using them,
    /// its recovery aborts them with the rest.
    ///
    /// Statements that find none left each begin their own (nobody waits behind another's
    /// controller write, which may take until its deadline when the controllers are down).
    async fn next_tid(&self) -> Result<u64, DataNodeError> {
        {
            let mut tids = lock(&self.tids);
            while let Some(range) = tids.last_mut() {
                match range.next() {
                    Some(tid) => return Ok(tid),
                    None => {
                        tids.pop();
                    }
                }
            }
        }
        let result = self
            .write_with_ended(|ended| Command::BeginTxn {
                coordinator: self.id,
                now_ms: now_ms(),
                ended,
                count: TIDS_AHEAD,
            })
            .await?;
        let CommandResult::Tid(first) = result else {
            return Err(DataNodeError::Protocol("BeginTxn"));
        };
        lock(&self.tids).push(first + 1..first + TIDS_AHEAD);
        Ok(first)
    }

    /// Ends an aborted transaction at once (not piggybacked), so participants holding it
    /// prepared learn soon that it will not commit.
    fn end_now(self: &Arc<Self>, tid: u64) {
        let node = self.clone();
        tokio::spawn(async move {
            if let Err(e) = node
                .controller
                .write(Command::EndTxns { tids: vec![tid] })
                .await
            {
                tracing::debug!(tid, error = %e, "cannot end an aborted transaction yet");
                node.push_ended(tid);
            }
        });
    }

    fn push_ended(&self, tid: u64) {
        lock(&self.ended).push(tid);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use async_trait::async_trait;
    use tokio::sync::watch;

    use super::*;

    /// A controller whose `BeginTxn` takes 50 ms, counting how many run at once; everything
    /// else succeeds at once.
    struct SlowBegins {
        metadata: watch::Sender<MetadataView>,
        last_tid: AtomicU64,
        begins: AtomicU64,
        running: AtomicU64,
        most_at_once: AtomicU64,
    }

    #[async_trait]
    impl ControllerClient for SlowBegins {
        async fn write(&self, cmd: Command) -> Result<CommandResult, ControllerError> {
            let Command::BeginTxn { count, .. } = cmd else {
                return Ok(CommandResult::Ok);
            };
            self.begins.fetch_add(1, Ordering::SeqCst);
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(CommandResult::Tid(
                self.last_tid.fetch_add(count, Ordering::SeqCst) + 1,
            ))
        }
        fn metadata(&self) -> MetadataView {
            self.metadata.borrow().clone()
        }
        fn subscribe(&self) -> watch::Receiver<MetadataView> {
            self.metadata.subscribe()
        }
        async fn leader_alias(&self) -> Result<String, ControllerError> {
            Ok("controller".into())
        }
        fn controller_aliases(&self) -> Vec<String> {
            vec!["controller".into()]
        }
    }

    #[tokio::test]
    async fn statements_begin_transactions_ahead_without_waiting_for_each_other() {
        let home = tempfile::tempdir().unwrap();
        let controller = Arc::new(SlowBegins {
            metadata: watch::channel(MetadataView::default()).0,
            last_tid: AtomicU64::new(0),
            begins: AtomicU64::new(0),
            running: AtomicU64::new(0),
            most_at_once: AtomicU64::new(0),
        });
        let options = DataNodeOptions {
            replication_dir: home.path().join("clusterReplication"),
            ..DataNodeOptions::default()
        };
        let node = DataNode::open(
            1,
            home.path(),
            controller.clone(),
            Arc::new(Peers::new()),
            options,
        )
        .await
        .unwrap();
        // Two statements find no id left: each begins 16 at once, neither waits for the other.
        let (a, b) = tokio::join!(node.next_tid(), node.next_tid());
        assert_eq!(controller.most_at_once.load(Ordering::SeqCst), 2);
        let mut seen = BTreeSet::from([a.unwrap(), b.unwrap()]);
        // The other 30 ids of both ranges are handed out before anything more is begun.
        for _ in 0..30 {
            assert!(seen.insert(node.next_tid().await.unwrap()));
        }
        assert_eq!(seen, (1..=32).collect::<BTreeSet<u64>>());
        assert_eq!(controller.begins.load(Ordering::SeqCst), 2);
        assert_eq!(node.next_tid().await.unwrap(), 33);
        assert_eq!(controller.begins.load(Ordering::SeqCst), 3);
    }
}
