//! Seeding: how a slave that lacks a database's history gets it (Pegasus duplication's
//! DS_PREPARE → DS_APP → DS_LOG).
//!
//! The master takes a *cut* of the database for a slave: the last task id at that moment (every
//! task of the database up to it is in the cut), the controller log index its data files are
//! read at, and the database's catalog then. It does so whenever the slave lacks history:
//! - a slave attaches for the first time, or again after losing its state (it reports less
//!   finished than the master truncated): a cut of every replicated database, and the slave
//!   starts pulling after the cut's task ([`Replication::record_slave`]);
//! - replication is switched on for a database: a cut for every attached slave.
//!
//! A cut is pending until the slave reports it installed ([`SlaveProgress::seeded`]); while it is,
//! the master's data nodes keep every file visible at the cut's index (see
//! [`Replication::pinned`]).
//!
//! The slave records each cut it is sent as a [`SlaveSeed`]; tasks of the database up to the cut
//! count as finished ("covered by the seed"), later ones wait until the seed is installed. A data
//! node of the slave runs the seed: it installs the cut's catalog, then replaces each table's
//! rows by the master's files as of the cut, one transaction per table (which records the table
//! as seeded in its commit entry), and finally marks the seed done.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::task::TaskState;
use super::{Context, Replication, ReplicationError, ReplicationRole};
use crate::catalog::{DatabaseDef, TableDef};

/// A database's catalog as of a cut.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedCatalog {
    pub def: DatabaseDef,
    pub tables: Vec<TableDef>,
}

/// A consistent cut of one database, taken by the master for one slave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedCut {
    pub db: String,
    /// Every task of the database up to this one is in the cut; the slave applies the later
    /// ones after installing it.
    pub task_id: u64,
    /// The master's controller log index the cut's files are read at.
    pub commit_index: u64,
    /// The master's clock when it took the cut (ns since the epoch).
    pub cut_ns: i64,
    pub catalog: SeedCatalog,
    /// A repair: only these tables and partitions are replaced, after the slave applied every
    /// task of the database up to the cut (`None`: a whole seed, which covers those tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<Repair>,
}

/// What of a table a repair replaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableScope {
    /// Every partition (an UPDATE or DELETE may have touched any).
    Whole,
    /// These partitions.
    Partitions(BTreeSet<String>),
}

impl TableScope {
    /// Whether it covers `partition`.
    pub fn covers(&self, partition: &str) -> bool {
        match self {
            TableScope::Whole => true,
            TableScope::Partitions(p) => p.contains(partition),
        }
    }

    /// Adds `other` to it.
    fn merge(&mut self, other: &TableScope) {
        match (&mut *self, other) {
            (TableScope::Whole, _) => {}
            (_, TableScope::Whole) => *self = TableScope::Whole,
            (TableScope::Partitions(mine), TableScope::Partitions(more)) => {
                mine.extend(more.iter().cloned())
            }
        }
    }
}

/// Tables and partitions of one database, by table name.
pub type Scope = BTreeMap<String, TableScope>;

/// Adds `more` to `scope`.
pub fn merge_scope(scope: &mut Scope, more: &Scope) {
    for (table, s) in more {
        match scope.get_mut(table) {
            Some(mine) => mine.merge(s),
            None => {
                scope.insert(table.clone(), s.clone());
            }
        }
    }
}

/// A slave's request that the master repair part of a database (`repairClusterReplication`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repair {
    /// The slave controller's log index that recorded the request: a cut answers one request.
    pub id: u64,
    pub tables: Scope,
}

/// A cut as a pull delivers it: with the master data nodes that hold its files (`host:port`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PulledSeed {
    pub cut: SeedCut,
    pub nodes: Vec<String>,
}

/// Where a slave's seed of a database is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeedState {
    /// Recorded, not started.
    Waiting,
    /// Its catalog is installed and tables are being copied.
    Copying,
    /// The last try failed; it is tried again.
    Failed,
    /// Installed: the database's tasks after the cut run.
    Done,
}

impl SeedState {
    pub fn name(self) -> &'static str {
        match self {
            SeedState::Waiting => "WAITING",
            SeedState::Copying => "COPYING",
            SeedState::Failed => "FAILED",
            SeedState::Done => "DONE",
        }
    }
}

/// A slave's seed of one database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlaveSeed {
    pub cut: SeedCut,
    pub nodes: Vec<String>,
    pub state: SeedState,
    /// Tables whose rows are installed.
    pub tables_done: BTreeSet<String>,
    /// Known once the files of every table were listed.
    pub partitions_total: Option<u64>,
    pub bytes_total: Option<u64>,
    pub partitions_done: u64,
    pub bytes_done: u64,
    pub rows_done: u64,
    /// When it was recorded, and when it was installed (0 until then).
    pub created_ns: i64,
    pub finished_ns: i64,
    /// Failed tries, and why the last one failed.
    pub attempts: u32,
    pub error: String,
}

/// One table of a seed installed, in the commit entry of the transaction that installs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedStep {
    pub db: String,
    pub cut_task: u64,
    pub table: String,
    pub partitions: u64,
    pub bytes: u64,
    pub rows: u64,
}

impl Replication {
    /// Takes a cut of `db` for `slave` now (master): a whole seed, or the `repair` a slave
    /// asked for.
    pub(super) fn take_cut(
        &mut self,
        slave: &str,
        db: &str,
        repair: Option<Repair>,
        ctx: &Context,
    ) {
        let Some(catalog) = ctx.databases.catalog(db) else {
            return;
        };
        let cut = SeedCut {
            db: db.to_string(),
            task_id: self.master.last_task_id,
            commit_index: ctx.index,
            cut_ns: ctx.now_ns,
            catalog,
            repair,
        };
        self.cuts
            .entry(slave.to_string())
            .or_default()
            .insert(db.to_string(), Arc::new(cut));
    }

    /// Replication was switched on for `db` (master): every attached slave gets a cut of it.
    pub fn cut_for_slaves(&mut self, db: &str, ctx: &Context) {
        let slaves: Vec<String> = self.slaves.keys().cloned().collect();
        for slave in slaves {
            self.take_cut(&slave, db, None, ctx);
        }
    }

    /// The repairs `slave` asks for (master): a cut for each not answered yet. A pending whole
    /// seed of the database answers it already.
    pub(super) fn cut_for_repairs(
        &mut self,
        slave: &str,
        repairs: &BTreeMap<String, Repair>,
        ctx: &Context,
    ) {
        for (db, repair) in repairs {
            if ctx.databases.replication(db).is_none() {
                continue;
            }
            let answered = self
                .cuts
                .get(slave)
                .and_then(|c| c.get(db))
                .is_some_and(|cut| cut.repair.as_ref().is_none_or(|r| r.id == repair.id));
            if !answered {
                self.take_cut(slave, db, Some(repair.clone()), ctx);
            }
        }
    }

    /// A slave with no usable history (new, or rebuilt): it starts after the current last
    /// task, with a cut of every replicated database (master).
    pub(super) fn start_slave(&mut self, slave: &str, ctx: &Context) {
        self.cuts.remove(slave);
        for db in ctx.databases.replicated() {
            self.take_cut(slave, db, None, ctx);
        }
    }

    /// Forgets the cuts `slave` reports installed (master). A cut is known by the master's
    /// log index it was taken at ([`SeedCut::commit_index`]): a repair may be cut at the task
    /// of the seed before it.
    pub(super) fn drop_installed_cuts(&mut self, slave: &str, seeded: &BTreeMap<String, u64>) {
        if let Some(cuts) = self.cuts.get_mut(slave) {
            cuts.retain(|db, cut| seeded.get(db).is_none_or(|done| *done < cut.commit_index));
            if cuts.is_empty() {
                self.cuts.remove(slave);
            }
        }
    }

    /// The controller log indexes whose files the data nodes must keep: on a master the
    /// pending cuts' and the indexes its slaves' read points stand for (a slave's
    /// `checkClusterReplicationConsistency` reads the master there, however far behind the
    /// slave is), on a slave the read points'.
    pub fn pinned_indexes(&self) -> BTreeSet<u64> {
        let cuts = self.cuts.values().flat_map(|c| c.values());
        let points = self.slave.read_points.values().map(|p| p.index);
        let slave_points = self
            .slaves
            .values()
            .flat_map(|s| s.replicated.values())
            .map(|p| p.master_index)
            .filter(|index| *index > 0);
        cuts.map(|cut| cut.commit_index)
            .chain(points)
            .chain(slave_points)
            .collect()
    }

    /// The table generations the pending cuts read (master): kept if dropped or truncated.
    pub fn pinned_tables(&self) -> BTreeSet<(u32, u64)> {
        self.cuts
            .values()
            .flat_map(|c| c.values())
            .flat_map(|cut| cut.catalog.tables.iter().map(|t| (t.id, t.generation)))
            .collect()
    }

    /// Whether `slave` has a pending cut at `index` that reads table generation `table`
    /// (master); `None` for `slave` means any slave.
    pub fn cut_reads(&self, slave: Option<&str>, index: u64, table: (u32, u64)) -> bool {
        self.cuts
            .iter()
            .filter(|(id, _)| slave.is_none_or(|s| s == id.as_str()))
            .flat_map(|(_, c)| c.values())
            .any(|cut| {
                cut.commit_index == index
                    && cut
                        .catalog
                        .tables
                        .iter()
                        .any(|t| (t.id, t.generation) == table)
            })
    }

    /// Seeds sent with a pull (slave): each newer than the database's last one replaces it;
    /// the database's tasks up to the cut count as finished, later ones wait for the seed.
    pub(super) fn record_seeds(&mut self, seeds: &[PulledSeed], ctx: &Context) {
        for p in seeds {
            let db = &p.cut.db;
            if self
                .slave
                .seeds
                .get(db)
                .is_some_and(|s| s.cut.commit_index >= p.cut.commit_index)
            {
                continue;
            }
            // A repair answers the request pending now, or none (a later request replaced
            // it); a whole seed answers any.
            match &p.cut.repair {
                Some(r) if self.slave.repairs.get(db).map(|mine| mine.id) != Some(r.id) => continue,
                _ => {
                    self.slave.repairs.remove(db);
                }
            }
            let in_scope = self.db_scope.as_ref().is_none_or(|s| s.contains(db));
            let seed = SlaveSeed {
                cut: p.cut.clone(),
                nodes: p.nodes.clone(),
                // Outside `slaveReplicationDBScope`: nothing to install, and the master may
                // release the cut.
                state: if in_scope {
                    SeedState::Waiting
                } else {
                    SeedState::Done
                },
                tables_done: BTreeSet::new(),
                partitions_total: None,
                bytes_total: None,
                partitions_done: 0,
                bytes_done: 0,
                rows_done: 0,
                created_ns: ctx.now_ns,
                finished_ns: if in_scope { 0 } else { ctx.now_ns },
                attempts: 0,
                error: String::new(),
            };
            self.slave.seeds.insert(db.clone(), seed);
            if in_scope {
                self.slave.databases.insert(db.clone());
            }
            // A repair covers nothing: the tasks up to its cut run first.
            if p.cut.repair.is_some() {
                continue;
            }
            let covered: Vec<u64> = self
                .slave
                .tasks
                .range(self.slave.open_from..)
                .take_while(|(id, _)| **id <= p.cut.task_id)
                .filter(|(_, t)| &t.task.db == db && t.state != TaskState::Finished)
                .map(|(id, _)| *id)
                .collect();
            self.cover(&covered, p.cut.task_id, ctx);
            let through = self.slave.finished_through.entry(db.clone()).or_default();
            *through = (*through).max(p.cut.task_id);
        }
    }

    /// Marks tasks finished as covered by the seed at `cut_task` (slave).
    pub(super) fn cover(&mut self, ids: &[u64], cut_task: u64, ctx: &Context) {
        for id in ids {
            if let Some(t) = self.slave.tasks.get_mut(id) {
                let t = Arc::make_mut(t);
                t.state = TaskState::Finished;
                t.finish_ns = ctx.now_ns;
                t.details = format!("covered by the seed at task {cut_task}");
            }
        }
    }

    /// Whether task `task_id` of `db` is in the database's seed (slave).
    pub(super) fn covered_by_seed(&self, db: &str, task_id: u64) -> Option<u64> {
        self.slave
            .seeds
            .get(db)
            .filter(|s| s.cut.repair.is_none())
            .map(|s| s.cut.task_id)
            .filter(|cut| task_id <= *cut)
    }

    /// Whether `db` is being seeded or repaired (slave): it has no read point and cannot be
    /// read or checked until it is done.
    pub fn seeding(&self, db: &str) -> bool {
        self.slave
            .seeds
            .get(db)
            .is_some_and(|s| s.state != SeedState::Done)
    }

    /// Whether task `task_id` of `db` waits for the database's seed (slave): every task after
    /// a seed's cut does; a repair lets the tasks up to its cut run first.
    pub fn held_by_seed(&self, db: &str, task_id: u64) -> bool {
        self.slave
            .seeds
            .get(db)
            .filter(|s| s.state != SeedState::Done)
            .is_some_and(|s| s.cut.repair.is_none() || task_id > s.cut.task_id)
    }

    /// Whether the seed of `db` may be installed now (slave): a repair once every task of the
    /// database up to its cut is pulled and finished, so the partitions it does not replace
    /// are the master's at the cut too.
    pub fn seed_ready(&self, db: &str) -> bool {
        let Some(seed) = self.slave.seeds.get(db) else {
            return false;
        };
        if seed.cut.repair.is_none() {
            return true;
        }
        let s = &self.slave;
        s.last_pulled >= seed.cut.task_id
            && !s
                .tasks
                .range(s.open_from..)
                .take_while(|(id, _)| **id <= seed.cut.task_id)
                .any(|(_, t)| t.task.db == db && t.state != TaskState::Finished)
    }

    /// `repairClusterReplication` (slave): asks the master for a cut that replaces `tables`
    /// of `db`. A request still unanswered takes these tables in as well.
    pub(super) fn request_repair(
        &mut self,
        db: &str,
        tables: &Scope,
        ctx: &Context,
    ) -> Result<(), ReplicationError> {
        self.require_role(ReplicationRole::Slave)?;
        if !self.slave.databases.contains(db) {
            return Err(ReplicationError::NotReplicated(db.to_string()));
        }
        if self.seeding(db) {
            return Err(ReplicationError::Seeding(db.to_string()));
        }
        let mut scope = self
            .slave
            .repairs
            .remove(db)
            .map(|r| r.tables)
            .unwrap_or_default();
        merge_scope(&mut scope, tables);
        self.slave.repairs.insert(
            db.to_string(),
            Repair {
                id: ctx.index,
                tables: scope,
            },
        );
        Ok(())
    }

    /// The tables a seed installs: every table of its cut, or those a repair names.
    pub fn seed_tables(seed: &SlaveSeed) -> Vec<&TableDef> {
        seed.cut
            .catalog
            .tables
            .iter()
            .filter(|t| {
                seed.cut
                    .repair
                    .as_ref()
                    .is_none_or(|r| r.tables.contains_key(&t.name))
            })
            .collect()
    }

    /// The seed of `db` at `cut_task`, unless it is installed already.
    fn open_seed(&mut self, db: &str, cut_task: u64) -> Result<&mut SlaveSeed, ReplicationError> {
        match self.slave.seeds.get_mut(db) {
            Some(s) if s.cut.task_id == cut_task && s.state != SeedState::Done => Ok(s),
            _ => Err(ReplicationError::SeedDone {
                db: db.to_string(),
                cut_task,
            }),
        }
    }

    /// Fails unless the seed of `db` at `cut_task` is still to be installed (before its catalog
    /// is installed).
    pub fn check_seed_open(&mut self, db: &str, cut_task: u64) -> Result<(), ReplicationError> {
        self.require_role(ReplicationRole::Slave)?;
        self.open_seed(db, cut_task).map(|_| ())
    }

    /// The seed's catalog is installed: it is copying.
    pub fn seed_started(&mut self, db: &str, cut_task: u64) -> Result<(), ReplicationError> {
        let s = self.open_seed(db, cut_task)?;
        s.state = SeedState::Copying;
        s.error.clear();
        Ok(())
    }

    /// Records a seeded table, in the commit entry of the transaction that installs it; refused
    /// (so the transaction is not committed) if it was recorded already.
    pub fn seed_step(&mut self, step: &SeedStep) -> Result<(), ReplicationError> {
        let s = self.open_seed(&step.db, step.cut_task)?;
        if s.tables_done.contains(&step.table) {
            return Err(ReplicationError::SeedDone {
                db: step.db.clone(),
                cut_task: step.cut_task,
            });
        }
        s.tables_done.insert(step.table.clone());
        s.partitions_done += step.partitions;
        s.bytes_done += step.bytes;
        s.rows_done += step.rows;
        Ok(())
    }

    pub(super) fn seed_totals(
        &mut self,
        db: &str,
        cut_task: u64,
        partitions: u64,
        bytes: u64,
    ) -> Result<(), ReplicationError> {
        let s = self.open_seed(db, cut_task)?;
        s.partitions_total = Some(partitions);
        s.bytes_total = Some(bytes);
        Ok(())
    }

    pub(super) fn seed_failed(
        &mut self,
        db: &str,
        cut_task: u64,
        error: &str,
    ) -> Result<(), ReplicationError> {
        let s = self.open_seed(db, cut_task)?;
        s.state = SeedState::Failed;
        s.attempts += 1;
        s.error = error.to_string();
        Ok(())
    }

    /// Every table is installed: the database's later tasks may run.
    pub(super) fn seed_done(
        &mut self,
        db: &str,
        cut_task: u64,
        ctx: &Context,
    ) -> Result<(), ReplicationError> {
        let s = self.open_seed(db, cut_task)?;
        let missing: Vec<&String> = Self::seed_tables(s)
            .into_iter()
            .map(|t| &t.name)
            .filter(|t| !s.tables_done.contains(*t))
            .collect();
        if !missing.is_empty() {
            return Err(ReplicationError::SeedIncomplete {
                db: db.to_string(),
                tables: missing.into_iter().cloned().collect(),
            });
        }
        s.state = SeedState::Done;
        s.finished_ns = ctx.now_ns;
        s.error.clear();
        let cut = s.cut.clone();
        // What it replaced is the master's again.
        match &cut.repair {
            None => {
                self.slave.diverged.remove(db);
            }
            Some(r) => self.undiverge(db, &r.tables),
        }
        self.read_at_cut(&cut, ctx);
        Ok(())
    }

    /// The database of an installed (or given up) seed reads as its cut until its first task
    /// after the cut is applied: every task up to the cut is in it or applied, none after.
    fn read_at_cut(&mut self, cut: &SeedCut, ctx: &Context) {
        let point = super::task::ReadPoint {
            task_id: cut.task_id,
            master_ns: cut.cut_ns,
            index: ctx.index,
            master_index: cut.commit_index,
        };
        self.slave.read_points.insert(cut.db.clone(), point);
    }

    /// Gives up the repair of `db` at `cut_task` (slave): it is DONE with `error`, the
    /// database's later tasks run, and what it was to replace stays diverged. Every task up
    /// to its cut is applied, so the database reads at the cut.
    pub(super) fn abandon_repair(
        &mut self,
        db: &str,
        cut_task: u64,
        error: &str,
        ctx: &Context,
    ) -> Result<(), ReplicationError> {
        let s = self.open_seed(db, cut_task)?;
        if s.cut.repair.is_none() {
            return Err(ReplicationError::SeedDone {
                db: db.to_string(),
                cut_task,
            });
        }
        s.state = SeedState::Done;
        s.finished_ns = ctx.now_ns;
        s.error = format!("abandoned: {error}");
        let cut = s.cut.clone();
        self.read_at_cut(&cut, ctx);
        Ok(())
    }

    /// The cut each database's installed seed was taken at (the master's log index), as a
    /// pull reports it (slave).
    pub fn seeded(&self) -> BTreeMap<String, u64> {
        self.slave
            .seeds
            .iter()
            .filter(|(_, s)| s.state == SeedState::Done)
            .map(|(db, s)| (db.clone(), s.cut.commit_index))
            .collect()
    }

    /// Tasks skipped on this slave: what they would have changed is marked diverged until a
    /// seed or repair replaces it (slave).
    pub(super) fn diverge(&mut self, task: &super::task::MasterTask) {
        let db = &task.db;
        let mut scope = Scope::new();
        let prefix = format!("{db}/");
        for t in &task.chunks.tables {
            if let Some(table) = t.strip_prefix(&prefix) {
                scope.insert(table.to_string(), TableScope::Whole);
            }
        }
        for p in &task.chunks.partitions {
            if let Some((table, partition)) =
                p.strip_prefix(&prefix).and_then(|p| p.split_once('/'))
            {
                let more = TableScope::Partitions([partition.to_string()].into());
                merge_scope(&mut scope, &[(table.to_string(), more)].into());
            }
        }
        // A DDL change, or a task naming nothing it touched: its table as a whole.
        if scope.is_empty() && !task.table.is_empty() {
            scope.insert(task.table.clone(), TableScope::Whole);
        }
        if !scope.is_empty() {
            merge_scope(self.slave.diverged.entry(db.clone()).or_default(), &scope);
        }
    }

    /// `scope` of `db` was replaced by the master's (slave).
    fn undiverge(&mut self, db: &str, scope: &Scope) {
        let Some(diverged) = self.slave.diverged.get_mut(db) else {
            return;
        };
        diverged.retain(|table, mine| match (scope.get(table), &mut *mine) {
            (None, _) => true,
            (Some(TableScope::Whole), _) => false,
            (Some(TableScope::Partitions(_)), TableScope::Whole) => true,
            (Some(TableScope::Partitions(done)), TableScope::Partitions(left)) => {
                left.retain(|p| !done.contains(p));
                !left.is_empty()
            }
        });
        if diverged.is_empty() {
            self.slave.diverged.remove(db);
        }
    }
}
