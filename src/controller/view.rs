//! What the rest of the server reads of the controller's state: [`MetadataView`], one applied
//! snapshot of the [`Metadata`] behind questions (a database, a table, a user, a data node,
//! the transactions in flight, the replication state), so the persisted struct can change
//! without every reader changing with it.
//!
//! A view wraps the snapshot's `Arc`: it is cheap to clone and never copies the metadata, and
//! everything read through one view comes from the same applied entry. Readers get views from
//! [`super::client::ControllerClient::metadata`] and `subscribe`.

use std::sync::Arc;

use super::error::MetadataError;
use super::metadata::{DatabaseMeta, Metadata, NodeInfo, Privilege, TxnMeta, UserMeta};
use crate::catalog::{DatabaseDef, NodeId, TableDef};
use crate::replication::model::{Context, DbReplication, Replication};

/// One applied snapshot of the controller's metadata, read-only.
#[derive(Clone, Debug, Default)]
pub struct MetadataView(Arc<Metadata>);

impl MetadataView {
    pub(in crate::controller) fn new(metadata: Arc<Metadata>) -> Self {
        MetadataView(metadata)
    }

    /// The snapshot itself, for the controller's own use (its change feed, its snapshots).
    pub(in crate::controller) fn snapshot(&self) -> &Arc<Metadata> {
        &self.0
    }

    /// The raft log index of the last entry this snapshot applied: it includes every write
    /// answered with an index at most this.
    pub fn applied_index(&self) -> u64 {
        self.0.applied_index
    }

    /// A database by name (`dfs://x`).
    pub fn database(&self, name: &str) -> Option<&Arc<DatabaseMeta>> {
        self.0.databases.get(name)
    }

    /// Every database, by name.
    pub fn databases(&self) -> impl Iterator<Item = &Arc<DatabaseMeta>> {
        self.0.databases.values()
    }

    /// The names of every database, in order.
    pub fn database_names(&self) -> impl Iterator<Item = &str> {
        self.0.databases.keys().map(String::as_str)
    }

    /// A table by database and name, with its database's definition.
    pub fn table(&self, db: &str, table: &str) -> Option<(&DatabaseDef, &TableDef)> {
        self.0.table(db, table)
    }

    /// A user by name.
    pub fn user(&self, name: &str) -> Option<&UserMeta> {
        self.0.users.get(name)
    }

    /// Every user, by name.
    pub fn users(&self) -> impl Iterator<Item = &UserMeta> {
        self.0.users.values()
    }

    /// Whether any user exists yet (none before the first start creates `admin`).
    pub fn has_users(&self) -> bool {
        !self.0.users.is_empty()
    }

    /// Whether `user` may use privilege `p` on `db`: see [`Metadata::check_privilege`].
    pub fn check_privilege(&self, user: &str, db: &str, p: Privilege) -> Result<(), MetadataError> {
        self.0.check_privilege(user, db, p)
    }

    /// A data node by id.
    pub fn node(&self, id: NodeId) -> Option<&NodeInfo> {
        self.0.node(id)
    }

    /// A data node by alias (`cluster.nodes`).
    pub fn node_by_alias(&self, alias: &str) -> Option<&NodeInfo> {
        self.0.nodes.get(alias)
    }

    /// Every registered data node, by alias.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.0.nodes.values()
    }

    /// A transaction the controller still tracks: begun and not ended, or committed and not
    /// yet published by every participant.
    pub fn txn(&self, tid: u64) -> Option<&TxnMeta> {
        self.0.txns.get(&tid)
    }

    /// Every transaction the controller still tracks (see [`Self::txn`]), by id.
    pub fn txns(&self) -> impl Iterator<Item = (u64, &TxnMeta)> {
        self.0.txns.iter().map(|(tid, t)| (*tid, t))
    }

    /// The last transaction id handed out: a transaction at most this that is not tracked
    /// has ended (committed and published, or aborted).
    pub fn last_tid(&self) -> u64 {
        self.0.last_tid
    }

    /// The time of the latest stamped entry (ns since the epoch): the metadata's clock.
    pub fn clock_ns(&self) -> i64 {
        self.0.clock_ns
    }

    /// The cluster replication state: role, queues, slaves.
    pub fn replication(&self) -> &Replication {
        &self.0.replication
    }

    /// The replication settings of `db` if a change to it must become a task now: this
    /// cluster is an enabled master and replication is on for the database.
    pub fn replicated_db(&self, db: &str) -> Option<&DbReplication> {
        self.0.replicated_db(db)
    }

    /// What the replication state's queries may know of the rest of the metadata.
    pub fn replication_context(&self) -> Context<'_> {
        self.0.replication_context()
    }
}

impl From<Metadata> for MetadataView {
    /// A view of metadata decoded or built outside a controller (tests, tools).
    fn from(metadata: Metadata) -> Self {
        MetadataView(Arc::new(metadata))
    }
}
