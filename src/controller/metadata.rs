//! The controller's replicated state: the catalog (databases, tables, partition domains), users
//! with their per-database privileges, transaction ids with their outcomes, and the
//! [`Command`]s that change it.
//!
//! [`Metadata::apply`] is the raft state machine's transition function. It must be
//! deterministic: everything time- or node-dependent (timestamps, salts) travels inside the
//! command. A command that is invalid against the current state changes nothing and returns
//! [`CommandResult::Err`]; it is still a committed log entry, so every replica agrees on that.
//!
//! Format, version [`FORMAT_VERSION`] (= 1): `Metadata` is serialised as JSON into raft
//! snapshots (and sent whole to data nodes), `Command` into raft log entries (and the change
//! feed). Fields added later get `#[serde(default)]`, so older records read as they were meant;
//! a change that older builds could not read right bumps the version. `Metadata::format_version`
//! records the version that last wrote the state (0: written before the version was recorded,
//! read as 1); metadata of a newer version is refused when it is read (a newer build's fields
//! would otherwise be dropped without a word). Commands carry no version of their own: the raft
//! log file that holds them has one ([`super::raft::log_store`]).
//!
//! Privileges: [`Metadata::check_privilege`] is the one rule every statement is checked
//! against. Admins may do everything; the owner of a database (the user who created it) holds
//! every privilege on it; anyone else needs a grant ([`Command::Grant`]) on that database or on
//! `*` (all databases). Grants name databases, so dropping a database drops the grants on it
//! (a later database of the same name starts with none), and dropping a user drops theirs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::MetadataError;
pub use super::privilege::{Privilege, ALL_DATABASES};
use super::secret::ScramSecret;
use crate::catalog::{ColumnDef, DatabaseDef, KeyValue, NodeId, PartitionLevel, TableDef};
use crate::replication::model::{Applies, DbReplication, Replication, ReplicationCommand, TxnTask};

/// Version of the persisted metadata format written by this build; it reads this and older
/// versions.
pub const FORMAT_VERSION: u32 = 1;

/// The replicated metadata. Its fields are the controller's: the rest of the server reads it
/// through [`super::view::MetadataView`], so this persisted shape can change without them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// The format version of the build that last applied a command to it.
    #[serde(default, deserialize_with = "known_format")]
    pub(in crate::controller) format_version: u32,
    /// Databases by name (`dfs://x`).
    pub(in crate::controller) databases: BTreeMap<String, Arc<DatabaseMeta>>,
    /// Users by name.
    pub(in crate::controller) users: BTreeMap<String, UserMeta>,
    /// Transactions that have begun and not yet been ended by their coordinator.
    pub(in crate::controller) txns: BTreeMap<u64, TxnMeta>,
    /// The last transaction id handed out.
    pub(in crate::controller) last_tid: u64,
    /// The last database/table id handed out (ids double as PostgreSQL oids, above 16384).
    pub(in crate::controller) last_object_id: u32,
    /// The raft log index of the last entry applied: a replica of the metadata (a data node's
    /// copy) is at least as new as a write whose index is at most this. Serialised as
    /// `version`, the name snapshots and the change feed have always used.
    #[serde(default, rename = "version")]
    pub(in crate::controller) applied_index: u64,
    /// The cluster's data nodes by alias, as configured in `cluster.nodes`.
    #[serde(default)]
    pub(in crate::controller) nodes: BTreeMap<String, NodeInfo>,
    /// The last data node id handed out.
    #[serde(default)]
    pub(in crate::controller) last_node_id: NodeId,
    /// Recent results of [`Command::Once`] requests, by client, so a retried request is
    /// answered without being applied twice.
    #[serde(default)]
    pub(in crate::controller) sessions: BTreeMap<u64, ClientSession>,
    /// The time of the latest [`Command::Stamped`] entry (ns since the epoch): the clock of
    /// everything the metadata records (task submission times).
    #[serde(default)]
    pub(in crate::controller) clock_ns: i64,
    /// Cross-cluster replication ([`super::replication`]).
    #[serde(default)]
    pub(in crate::controller) replication: Replication,
}

/// Reads `Metadata::format_version`, refusing a version newer than this build's: wherever
/// metadata is decoded (snapshot file, installed snapshot, a data node's copy), newer metadata
/// is an error instead of a silent misread.
fn known_format<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let found = u32::deserialize(d)?;
    if found > FORMAT_VERSION {
        return Err(serde::de::Error::custom(format!(
            "controller metadata has format version {found}; this build reads versions up to \
             {FORMAT_VERSION}"
        )));
    }
    Ok(found)
}

/// A data node of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    pub alias: String,
    /// `host:port`: pgwire, Arrow Flight and HTTP on one port.
    pub addr: String,
}

/// The requests of one client whose answers it may not have received yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientSession {
    /// Answers by request sequence number.
    pub results: BTreeMap<u64, CommandResult>,
    /// `Metadata::applied_index` when the client last wrote; the oldest sessions are evicted first.
    pub touched: u64,
}

/// At most this many client sessions are remembered.
const MAX_SESSIONS: usize = 1024;

/// A database with its tables.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatabaseMeta {
    pub def: DatabaseDef,
    pub tables: BTreeMap<String, TableDef>,
    /// Present while cluster replication is enabled on the database.
    #[serde(default)]
    pub replication: Option<DbReplication>,
}

/// A user. Of the password only its SCRAM-SHA-256 verifier is kept ([`ScramSecret`]: salt,
/// iterations, StoredKey, ServerKey; serialised flattened into the record). Records of older
/// builds with `salted_password` are read into the verifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserMeta {
    pub name: String,
    #[serde(flatten)]
    pub secret: ScramSecret,
    pub is_admin: bool,
    /// Granted privileges by database name (`dfs://x`), or [`ALL_DATABASES`] (`*`) for grants
    /// on every database, present and future. A database appears only while it holds at least
    /// one privilege; in JSON: `{"dfs://x": ["Read", "Write"], "*": ["Read"]}`. Ownership is
    /// not recorded here (it is `DatabaseDef::owner`), nor are an admin's implied rights.
    #[serde(default)]
    pub privileges: BTreeMap<String, BTreeSet<Privilege>>,
}

/// A transaction's state in the controller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxnMeta {
    pub coordinator: NodeId,
    pub state: TxnState,
    pub begun_ms: i64,
    /// Participants of a committed transaction that have not yet published it; the
    /// transaction is forgotten when none is left.
    #[serde(default)]
    pub pending: BTreeSet<NodeId>,
    /// The commit index: the log index of the `CommitTxn` entry (0 while active).
    #[serde(default)]
    pub committed_at: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    Active,
    Committed,
}

/// A table generation a transaction wrote against; the commit fails if it has changed
/// (the table was dropped, truncated or altered meanwhile).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableVersion {
    pub db: String,
    pub table: String,
    pub table_id: u32,
    pub generation: u64,
}

/// One more transaction committed by a [`Command::CommitTxn`] entry (its fields mean what
/// the entry's own do).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxnPart {
    pub tid: u64,
    pub tables: Vec<TableVersion>,
    #[serde(default)]
    pub participants: Vec<NodeId>,
    #[serde(default)]
    pub task: Option<TxnTask>,
}

/// A change to the metadata: one raft log entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    CreateDatabase {
        def: DatabaseDef,
        if_not_exists: bool,
    },
    DropDatabase {
        name: String,
        if_exists: bool,
    },
    CreateTable {
        db: String,
        def: TableDef,
        if_not_exists: bool,
    },
    DropTable {
        db: String,
        table: String,
        if_exists: bool,
    },
    TruncateTable {
        db: String,
        table: String,
    },
    AddColumn {
        db: String,
        table: String,
        column: ColumnDef,
    },
    DropColumn {
        db: String,
        table: String,
        column: String,
    },
    RenameColumn {
        db: String,
        table: String,
        from: String,
        to: String,
    },
    /// `ALTER TABLE ... RENAME TO`: the table keeps its id (and so its files) under a new name.
    RenameTable {
        db: String,
        table: String,
        to: String,
    },
    /// Extends a VALUE level's domain (`newValuePartitionPolicy=add`).
    AddValuePartitions {
        db: String,
        level: usize,
        values: Vec<KeyValue>,
    },
    /// `addRangePartitions`: a RANGE level's boundaries grow past its last one, each new one
    /// ending a new partition.
    AddRangePartitions {
        db: String,
        level: usize,
        bounds: Vec<KeyValue>,
    },
    /// Begins `count` transactions (1 if 0) of a coordinator, with consecutive ids: the
    /// answer is the first. A coordinator begins a few ahead and hands them to its statements,
    /// so most transactions cost one log entry (their commit). `ended` lists transactions the
    /// coordinator has finished publishing, whose outcome nobody needs any more (piggybacked
    /// to save a log entry).
    BeginTxn {
        coordinator: NodeId,
        now_ms: i64,
        ended: Vec<u64>,
        #[serde(default)]
        count: u64,
    },
    /// The commit point of a transaction. `participants` are the data nodes holding its
    /// prepared files (the coordinator alone when empty).
    CommitTxn {
        tid: u64,
        tables: Vec<TableVersion>,
        #[serde(default)]
        participants: Vec<NodeId>,
        /// The replication task of a transaction on a replicated database.
        #[serde(default)]
        task: Option<TxnTask>,
        /// The table of a slave's seed this transaction installs (it is recorded as seeded in
        /// the same entry, or the commit is refused).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seeded: Option<Box<crate::replication::model::SeedStep>>,
        /// The slave tasks this transaction applies, and the data node applying them: they
        /// are finished by this very entry, or the commit is refused if one already was.
        #[serde(default)]
        applies: Option<Applies>,
        /// As in [`Command::BeginTxn`]: the coordinator's ended transactions.
        #[serde(default)]
        ended: Vec<u64>,
        /// More transactions of the same coordinator committed by this entry, all of them and
        /// `tid` or none (a transaction block that wrote several tables, one transaction per
        /// table). Absent in single commits, so their entries read as they always did.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        with: Vec<TxnPart>,
    },
    /// Participants that have published a committed transaction.
    Published {
        tid: u64,
        nodes: Vec<NodeId>,
    },
    /// Registers the data nodes of `cluster.nodes` (alias, address); known aliases keep their
    /// id, new ones get the next id.
    SyncNodes {
        datanodes: Vec<(String, String)>,
    },
    /// A request that may be retried: applied once, answered from the session afterwards.
    /// `acked_below` is the client's lowest request still waiting for its answer: answers
    /// below it are dropped.
    Once {
        client: u64,
        seq: u64,
        acked_below: u64,
        cmd: Box<Command>,
    },
    /// Forgets active transactions (aborts them) or committed ones (ends them).
    EndTxns {
        tids: Vec<u64>,
    },
    /// Settles a transaction whose commit went unanswered: aborts it if it is still active;
    /// answers `Committed` with its commit index if it committed.
    AbortTxn {
        tid: u64,
    },
    /// Aborts every active transaction of a coordinator (it restarted and lost them).
    AbortCoordinatorTxns {
        coordinator: NodeId,
    },
    CreateUser {
        user: UserMeta,
        if_not_exists: bool,
    },
    /// Replaces a user's password verifier (entries of older builds carry `salted_password`,
    /// read into the verifier).
    AlterUserPassword {
        name: String,
        #[serde(flatten)]
        secret: ScramSecret,
    },
    DropUser {
        name: String,
        if_exists: bool,
    },
    /// Adds `privileges` on database `db` (or [`ALL_DATABASES`]) to a user's grants.
    Grant {
        user: String,
        db: String,
        privileges: BTreeSet<Privilege>,
    },
    /// Removes `privileges` from a user's grants on `db`. Only that entry changes: revoking on
    /// a database leaves a grant on `*` in place, and revoking what was never granted is a
    /// no-op.
    Revoke {
        user: String,
        db: String,
        privileges: BTreeSet<Privilege>,
    },
    /// A command stamped with the leader's clock when it was proposed.
    Stamped {
        at_ns: i64,
        cmd: Box<Command>,
    },
    /// Applies a DDL task on a slave and finishes it, in one entry.
    ApplyTask {
        task_id: u64,
        node: String,
        cmd: Box<Command>,
    },
    /// A slave's seed of `db` installs the catalog of its cut (see
    /// [`crate::replication::model::seed`]): creates the database if it is missing, makes each
    /// table the cut's (one whose columns or partitioning differ is replaced by an empty one),
    /// and drops the tables the cut does not have.
    SeedCatalog {
        db: String,
        cut_task: u64,
    },
    /// `setDatabaseForClusterReplication(db, enabled)`.
    SetDatabaseReplication {
        db: String,
        enabled: bool,
    },
    /// `setDatabaseClusterReplicationExecutionSet(db, set)`.
    SetExecutionSet {
        db: String,
        set: u8,
    },
    /// A change to the replication queues alone. Encoded untagged, so each is written as the
    /// command of its own name (`{"SkipTasks": {...}}`), as before the queues had a model of
    /// their own: entries of earlier builds read unchanged.
    #[serde(untagged)]
    Replication(ReplicationCommand),
}

/// The outcome of applying a [`Command`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum CommandResult {
    #[default]
    Ok,
    /// Nothing was done (`if exists` / `if not exists`).
    Skipped,
    /// A new transaction id.
    Tid(u64),
    /// A transaction committed at `commit_index` (the log index of its commit), queued as
    /// replication task `task` if its database is replicated. The index is serialised as
    /// `version` (client sessions in snapshots, `ctl.write` replies), as it always was.
    Committed {
        #[serde(rename = "version")]
        commit_index: u64,
        task: Option<u64>,
        /// The replication tasks of the entry's further transactions (`with`), in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tasks: Vec<Option<u64>>,
    },
    Err(MetadataError),
}

impl Metadata {
    /// Applies one committed command. Deterministic.
    pub fn apply(&mut self, cmd: &Command) -> CommandResult {
        if let Command::Once {
            client,
            seq,
            acked_below,
            cmd,
        } = cmd
        {
            return self.apply_once(*client, *seq, *acked_below, cmd);
        }
        if let Command::Stamped { at_ns, cmd } = cmd {
            self.clock_ns = self.clock_ns.max(*at_ns);
            return self.apply(cmd);
        }
        // Checked before: a dropped database is no longer there to ask afterwards.
        let ddl_task = self.ddl_task_of(cmd);
        match self.try_apply(cmd) {
            Ok(CommandResult::Skipped) => CommandResult::Skipped,
            Ok(r) => {
                if let Some((db, table, op)) = ddl_task {
                    self.queue_ddl(db, table, op, cmd);
                }
                r
            }
            Err(e) => CommandResult::Err(e),
        }
    }

    fn apply_once(
        &mut self,
        client: u64,
        seq: u64,
        acked_below: u64,
        cmd: &Command,
    ) -> CommandResult {
        let applied_index = self.applied_index;
        if let Some(session) = self.sessions.get_mut(&client) {
            session.results.retain(|s, _| *s >= acked_below);
            session.touched = applied_index;
            if let Some(r) = session.results.get(&seq) {
                return r.clone();
            }
            if seq < acked_below {
                // The client has its answer already; this is a stale copy.
                return CommandResult::Skipped;
            }
        }
        let result = self.apply(cmd);
        if !self.sessions.contains_key(&client) && self.sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = self
                .sessions
                .iter()
                .min_by_key(|(id, s)| (s.touched, **id))
                .map(|(id, _)| *id)
            {
                self.sessions.remove(&oldest);
            }
        }
        let session = self.sessions.entry(client).or_default();
        session.touched = applied_index;
        session.results.insert(seq, result.clone());
        result
    }

    fn try_apply(&mut self, cmd: &Command) -> Result<CommandResult, MetadataError> {
        self.format_version = FORMAT_VERSION;
        match cmd {
            Command::CreateDatabase { def, if_not_exists } => {
                if self.databases.contains_key(&def.name) {
                    return if *if_not_exists {
                        Ok(CommandResult::Skipped)
                    } else {
                        Err(MetadataError::DatabaseExists(def.name.clone()))
                    };
                }
                let mut def = def.clone();
                def.id = self.next_object_id();
                let mut placement: Vec<NodeId> = self.nodes.values().map(|n| n.id).collect();
                placement.sort_unstable();
                def.placement = placement;
                self.databases.insert(
                    def.name.clone(),
                    Arc::new(DatabaseMeta {
                        def,
                        tables: BTreeMap::new(),
                        replication: None,
                    }),
                );
            }
            Command::DropDatabase { name, if_exists } => {
                if self.databases.remove(name).is_none() {
                    return skip_or(*if_exists, MetadataError::DatabaseNotFound(name.clone()));
                }
                // A database created later under the same name must not inherit them.
                for user in self.users.values_mut() {
                    user.privileges.remove(name);
                }
            }
            Command::CreateTable {
                db,
                def,
                if_not_exists,
            } => {
                let exists = self.database_mut(db)?.tables.contains_key(&def.name);
                if exists {
                    return if *if_not_exists {
                        Ok(CommandResult::Skipped)
                    } else {
                        Err(MetadataError::TableExists {
                            db: db.clone(),
                            table: def.name.clone(),
                        })
                    };
                }
                let mut def = def.clone();
                def.id = self.next_object_id();
                self.database_mut(db)?.tables.insert(def.name.clone(), def);
            }
            Command::DropTable {
                db,
                table,
                if_exists,
            } => {
                let database = self.database_mut(db)?;
                if database.tables.remove(table).is_none() {
                    return skip_or(
                        *if_exists,
                        MetadataError::TableNotFound {
                            db: db.clone(),
                            table: table.clone(),
                        },
                    );
                }
            }
            Command::TruncateTable { db, table } => {
                self.table_mut(db, table)?.generation += 1;
            }
            Command::AddColumn { db, table, column } => {
                let t = self.table_mut(db, table)?;
                if t.column(&column.name).is_some() {
                    return Err(MetadataError::ColumnExists {
                        table: table.clone(),
                        column: column.name.clone(),
                    });
                }
                let mut column = column.clone();
                column.id = t.next_column_id;
                t.next_column_id += 1;
                t.columns.push(column);
            }
            Command::DropColumn { db, table, column } => {
                let t = self.table_mut(db, table)?;
                let Some(c) = t.column(column).cloned() else {
                    return Err(MetadataError::ColumnNotFound {
                        table: table.clone(),
                        column: column.clone(),
                    });
                };
                if t.partition_columns.contains(&c.name) {
                    return Err(MetadataError::CannotDropColumn {
                        column: c.name,
                        reason: "it is a partition column".into(),
                    });
                }
                if t.columns.len() == 1 {
                    return Err(MetadataError::CannotDropColumn {
                        column: c.name,
                        reason: "it is the table's only column".into(),
                    });
                }
                t.columns.retain(|x| x.id != c.id);
            }
            Command::RenameColumn {
                db,
                table,
                from,
                to,
            } => {
                let t = self.table_mut(db, table)?;
                if t.column(to)
                    .is_some_and(|c| !c.name.eq_ignore_ascii_case(from))
                {
                    return Err(MetadataError::ColumnExists {
                        table: table.clone(),
                        column: to.clone(),
                    });
                }
                let Some(old) = t.column(from).map(|c| c.name.clone()) else {
                    return Err(MetadataError::ColumnNotFound {
                        table: table.clone(),
                        column: from.clone(),
                    });
                };
                for p in t.partition_columns.iter_mut().filter(|p| **p == old) {
                    *p = to.clone();
                }
                if let Some(c) = t.columns.iter_mut().find(|c| c.name == old) {
                    c.name = to.clone();
                }
            }
            Command::RenameTable { db, table, to } => {
                let database = self.database_mut(db)?;
                if database.tables.contains_key(to) {
                    return Err(MetadataError::TableExists {
                        db: db.clone(),
                        table: to.clone(),
                    });
                }
                let Some(mut def) = database.tables.remove(table) else {
                    return Err(MetadataError::TableNotFound {
                        db: db.clone(),
                        table: table.clone(),
                    });
                };
                // Writes begun under the old name fail at commit (their table is gone by
                // that name), so no task ever names a table that is not there.
                def.name = to.clone();
                database.tables.insert(to.clone(), def);
            }
            Command::AddValuePartitions { db, level, values } => {
                let database = self.database_mut(db)?;
                match database.def.levels.get_mut(*level) {
                    Some(PartitionLevel::Value { values: domain, .. }) => {
                        domain.extend(values.iter().cloned());
                    }
                    _ => {
                        return Err(MetadataError::NotValueLevel {
                            db: db.clone(),
                            level: *level,
                        })
                    }
                }
            }
            Command::AddRangePartitions { db, level, bounds } => {
                let database = self.database_mut(db)?;
                let Some(PartitionLevel::Range { bounds: domain, .. }) =
                    database.def.levels.get_mut(*level)
                else {
                    return Err(MetadataError::NotRangeLevel {
                        db: db.clone(),
                        level: *level,
                    });
                };
                let last = domain.last();
                let increasing = bounds.windows(2).all(|w| w[0] < w[1]);
                if bounds.is_empty() || !increasing || last.is_some_and(|l| bounds[0] <= *l) {
                    return Err(MetadataError::RangeBounds {
                        db: db.clone(),
                        level: *level,
                    });
                }
                domain.extend(bounds.iter().cloned());
            }
            Command::BeginTxn {
                coordinator,
                now_ms,
                ended,
                count,
            } => {
                self.end_txns(ended);
                let first = self.last_tid + 1;
                for _ in 0..(*count).max(1) {
                    self.last_tid += 1;
                    self.txns.insert(
                        self.last_tid,
                        TxnMeta {
                            coordinator: *coordinator,
                            state: TxnState::Active,
                            begun_ms: *now_ms,
                            pending: BTreeSet::new(),
                            committed_at: 0,
                        },
                    );
                }
                return Ok(CommandResult::Tid(first));
            }
            Command::CommitTxn {
                tid,
                tables,
                participants,
                task,
                applies,
                seeded,
                ended,
                with,
            } => {
                self.end_txns(ended);
                let first = TxnPart {
                    tid: *tid,
                    tables: tables.clone(),
                    participants: participants.clone(),
                    task: task.clone(),
                };
                let parts: Vec<&TxnPart> = std::iter::once(&first).chain(with).collect();
                // Every check before any change: the entry commits all its transactions or
                // none (and forgets them all when refused).
                let refuse = |m: &mut Self, e: MetadataError| {
                    for p in &parts {
                        m.txns.remove(&p.tid);
                    }
                    Err(e)
                };
                let mut coordinators = Vec::with_capacity(parts.len());
                for p in &parts {
                    match self.txns.get(&p.tid) {
                        Some(t) if t.state == TxnState::Active => coordinators.push(t.coordinator),
                        _ => return refuse(self, MetadataError::TxnNotActive(p.tid)),
                    }
                }
                if let Some(applies) = applies {
                    if let Err(e) = self.finish_tasks(&applies.task_ids, &applies.node) {
                        return refuse(self, e);
                    }
                }
                for v in parts.iter().flat_map(|p| &p.tables) {
                    let current = self
                        .databases
                        .get(&v.db)
                        .and_then(|d| d.tables.get(&v.table));
                    if !current.is_some_and(|t| t.id == v.table_id && t.generation == v.generation)
                    {
                        let e = MetadataError::Conflict {
                            db: v.db.clone(),
                            table: v.table.clone(),
                        };
                        return refuse(self, e);
                    }
                }
                // A replicated write needs its task data, which the coordinator keeps only if
                // replication was on when the transaction began.
                for p in &parts {
                    if let Some(v) = p
                        .tables
                        .iter()
                        .find(|v| self.replicated_db(&v.db).is_some())
                    {
                        if p.task.is_none() {
                            let e = MetadataError::ReplicationSwitchedOn(v.db.clone());
                            return refuse(self, e);
                        }
                    }
                }
                if let Some(step) = seeded {
                    if let Err(e) = self.replication.seed_step(step) {
                        return refuse(self, e.into());
                    }
                }
                let mut tasks = Vec::with_capacity(parts.len());
                for (p, coordinator) in parts.iter().zip(coordinators) {
                    if let Some(t) = self.txns.get_mut(&p.tid) {
                        t.state = TxnState::Committed;
                        t.pending = p.participants.iter().copied().collect();
                        t.committed_at = self.applied_index;
                    }
                    tasks.push(p.task.as_ref().and_then(|task| {
                        self.queue_txn(p.tid, coordinator, &p.participants, task)
                    }));
                }
                let task = tasks.remove(0);
                return Ok(CommandResult::Committed {
                    commit_index: self.applied_index,
                    task,
                    tasks,
                });
            }
            Command::Stamped { cmd, .. } => return Ok(self.apply(cmd)),
            Command::Replication(cmd) => {
                let (replication, ctx) = self.replication_mut();
                replication.apply(cmd, &ctx)?;
            }
            Command::ApplyTask { task_id, node, cmd } => {
                self.replication.check_task_open(*task_id, node)?;
                let result = match cmd.as_ref() {
                    // The master switched replication of the database off: that concerns
                    // its own queue; here finishing the task (which releases the database
                    // to clients) is the whole effect.
                    Command::SetDatabaseReplication { .. } => CommandResult::Ok,
                    cmd => self.apply(cmd),
                };
                if let CommandResult::Err(e) = result {
                    return Err(e);
                }
                self.finish_tasks(&[*task_id], node)?;
                return Ok(result);
            }
            Command::SetDatabaseReplication { db, enabled } => {
                self.set_db_replication(db, *enabled)?;
            }
            Command::SeedCatalog { db, cut_task } => self.install_seed_catalog(db, *cut_task)?,
            Command::SetExecutionSet { db, set } => self.set_execution_set(db, *set)?,
            Command::Published { tid, nodes } => {
                if let Some(t) = self.txns.get_mut(tid) {
                    if t.state == TxnState::Committed {
                        for n in nodes {
                            t.pending.remove(n);
                        }
                        if t.pending.is_empty() {
                            self.txns.remove(tid);
                        }
                    }
                }
            }
            Command::SyncNodes { datanodes } => {
                for (alias, addr) in datanodes {
                    match self.nodes.get_mut(alias) {
                        Some(n) => n.addr = addr.clone(),
                        None => {
                            self.last_node_id += 1;
                            self.nodes.insert(
                                alias.clone(),
                                NodeInfo {
                                    id: self.last_node_id,
                                    alias: alias.clone(),
                                    addr: addr.clone(),
                                },
                            );
                        }
                    }
                }
            }
            Command::Once { cmd, .. } => {
                // Only reachable when nested; `apply` handles the outer one.
                return Ok(self.apply(cmd));
            }
            Command::EndTxns { tids } => self.end_txns(tids),
            Command::AbortTxn { tid } => match self.txns.get(tid) {
                Some(t) if t.state == TxnState::Committed => {
                    return Ok(CommandResult::Committed {
                        commit_index: t.committed_at,
                        task: None,
                        tasks: Vec::new(),
                    })
                }
                Some(_) => {
                    self.txns.remove(tid);
                }
                None => {}
            },
            Command::AbortCoordinatorTxns { coordinator } => {
                self.txns
                    .retain(|_, t| !(t.coordinator == *coordinator && t.state == TxnState::Active));
            }
            Command::CreateUser {
                user,
                if_not_exists,
            } => {
                if self.users.contains_key(&user.name) {
                    return if *if_not_exists {
                        Ok(CommandResult::Skipped)
                    } else {
                        Err(MetadataError::UserExists(user.name.clone()))
                    };
                }
                self.users.insert(user.name.clone(), user.clone());
            }
            Command::AlterUserPassword { name, secret } => {
                self.user_mut(name)?.secret = secret.clone();
            }
            Command::DropUser { name, if_exists } => {
                match self.users.get(name) {
                    None => return skip_or(*if_exists, MetadataError::UserNotFound(name.clone())),
                    Some(u)
                        if u.is_admin
                            && self.users.values().filter(|u| u.is_admin).count() == 1 =>
                    {
                        return Err(MetadataError::CannotDropAdmin(name.clone()))
                    }
                    Some(_) => {}
                }
                // The grants are part of the user record and go with it.
                self.users.remove(name);
            }
            Command::Grant {
                user,
                db,
                privileges,
            } => {
                self.check_grant_target(user, db)?;
                if privileges.is_empty() {
                    return Ok(CommandResult::Ok);
                }
                self.user_mut(user)?
                    .privileges
                    .entry(db.clone())
                    .or_default()
                    .extend(privileges.iter().copied());
            }
            Command::Revoke {
                user,
                db,
                privileges,
            } => {
                self.check_grant_target(user, db)?;
                let grants = &mut self.user_mut(user)?.privileges;
                if let Some(held) = grants.get_mut(db) {
                    held.retain(|p| !privileges.contains(p));
                    if held.is_empty() {
                        grants.remove(db);
                    }
                }
            }
        }
        Ok(CommandResult::Ok)
    }

    /// Grants and revokes name an existing user and an existing database (or `*`).
    fn check_grant_target(&self, user: &str, db: &str) -> Result<(), MetadataError> {
        if !self.users.contains_key(user) {
            return Err(MetadataError::UserNotFound(user.to_string()));
        }
        if db != ALL_DATABASES && !self.databases.contains_key(db) {
            return Err(MetadataError::DatabaseNotFound(db.to_string()));
        }
        Ok(())
    }

    /// Forgets transactions their coordinator has ended (see [`Command::EndTxns`]).
    fn end_txns(&mut self, tids: &[u64]) {
        for tid in tids {
            self.txns.remove(tid);
        }
    }

    fn user_mut(&mut self, name: &str) -> Result<&mut UserMeta, MetadataError> {
        self.users
            .get_mut(name)
            .ok_or_else(|| MetadataError::UserNotFound(name.to_string()))
    }

    /// Whether `user` may use privilege `p` on database `db` (or, with [`ALL_DATABASES`], on
    /// every database: what `CREATE DATABASE` asks for with [`Privilege::Ddl`]).
    ///
    /// Admins may do everything. Otherwise a database must exist
    /// ([`MetadataError::DatabaseNotFound`], as PostgreSQL resolves names before it checks
    /// privileges), and its owner holds every privilege on it; anyone else needs `p` granted
    /// on `db` or on `*`. An unknown user (dropped while connected) holds nothing.
    pub fn check_privilege(&self, user: &str, db: &str, p: Privilege) -> Result<(), MetadataError> {
        let Some(u) = self.users.get(user) else {
            return Err(denied(user, db, p));
        };
        if u.is_admin {
            return Ok(());
        }
        if db != ALL_DATABASES {
            let database = self
                .databases
                .get(db)
                .ok_or_else(|| MetadataError::DatabaseNotFound(db.to_string()))?;
            if database.def.owner == user {
                return Ok(());
            }
        }
        let granted = |on: &str| u.privileges.get(on).is_some_and(|s| s.contains(&p));
        if granted(db) || granted(ALL_DATABASES) {
            Ok(())
        } else {
            Err(denied(user, db, p))
        }
    }

    pub(super) fn next_object_id(&mut self) -> u32 {
        // PostgreSQL reserves oids below 16384 for the system catalog.
        self.last_object_id = self.last_object_id.max(16383) + 1;
        self.last_object_id
    }

    /// A database to change (copied first if a reader still holds it).
    pub(super) fn database_mut(&mut self, db: &str) -> Result<&mut DatabaseMeta, MetadataError> {
        self.databases
            .get_mut(db)
            .map(Arc::make_mut)
            .ok_or_else(|| MetadataError::DatabaseNotFound(db.to_string()))
    }

    fn table_mut(&mut self, db: &str, table: &str) -> Result<&mut TableDef, MetadataError> {
        self.database_mut(db)?
            .tables
            .get_mut(table)
            .ok_or_else(|| MetadataError::TableNotFound {
                db: db.to_string(),
                table: table.to_string(),
            })
    }

    /// A table by database and name.
    pub fn table(&self, db: &str, table: &str) -> Option<(&DatabaseDef, &TableDef)> {
        let d = self.databases.get(db)?;
        d.tables.get(table).map(|t| (&d.def, t))
    }

    /// A data node by id.
    pub fn node(&self, id: NodeId) -> Option<&NodeInfo> {
        self.nodes.values().find(|n| n.id == id)
    }
}

/// Wall-clock nanoseconds since the epoch, for the timestamps commands carry (`apply` itself
/// never reads the clock).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Wall-clock milliseconds since the epoch, likewise.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn denied(user: &str, db: &str, privilege: Privilege) -> MetadataError {
    MetadataError::PermissionDenied {
        user: user.to_string(),
        privilege,
        db: db.to_string(),
    }
}

fn skip_or(skip: bool, err: MetadataError) -> Result<CommandResult, MetadataError> {
    if skip {
        Ok(CommandResult::Skipped)
    } else {
        Err(err)
    }
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
mod tests;
