//! The master's side of the queues: tasks numbered in commit order (`taskId`) and grouped
//! (`groupId`), the attached slaves' progress, and the truncation of what every slave has
//! finished.
//!
//! A task joins the newest group when it touches none of that group's partitions; DDL is a
//! group of its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use super::task::{Chunks, MasterTask, TaskPayload};
use super::{Context, Replication, ReplicationError, ReplicationRole, ReplicationState};

/// The master's send queue and its state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MasterQueue {
    pub state: ReplicationState,
    pub last_task_id: u64,
    pub last_group_id: u64,
    /// Queued tasks, and the most recent truncated ones (at most [`TRUNCATED_KEPT`]).
    ///
    /// The metadata is copied for every applied raft batch, so both task lists are persistent
    /// maps (a copy shares them) of `Arc`s (a change copies one path of map nodes, whose
    /// entries are then pointers, not whole tasks).
    pub tasks: OrdMap<u64, Arc<MasterTask>>,
    /// The queue lacks history a new slave needs: replication was switched on for a database
    /// that had tables (its rows are in no task). A new slave is then seeded, as it is once a
    /// task was truncated.
    #[serde(default)]
    pub incomplete: bool,
    /// Every database replication was ever switched on for: a slave may hold an earlier
    /// state of one of them.
    #[serde(default)]
    pub replicated_before: std::collections::BTreeSet<String>,
}

/// Truncated tasks still listed by `getMasterReplicationStatus` (DolphinDB shows the 10,000
/// most recent finished ones).
pub const TRUNCATED_KEPT: usize = 10_000;

/// Removes the lowest task of a queue.
pub(super) fn pop_first<T: Clone>(tasks: &mut OrdMap<u64, T>) {
    if let Some(id) = tasks.get_min().map(|(id, _)| *id) {
        tasks.remove(&id);
    }
}

/// What a master knows of one slave cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaveProgress {
    /// The slave controller that pulled last (`host:port`).
    pub connected: String,
    /// The slave's controllers.
    pub controllers: Vec<String>,
    /// Every task up to this one is finished on the slave.
    pub finished: u64,
    /// The master's clock at the last recorded pull.
    pub last_pull_ns: i64,
    /// The cut (its task id) of each database whose seed the slave has installed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub seeded: BTreeMap<String, u64>,
    /// The read point of each database on the slave (its `index` is the slave's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replicated: BTreeMap<String, super::task::ReadPoint>,
    /// Recorded by the master: the slave was started afresh after this task, every task up to
    /// it being in the seeds of its cuts.
    #[serde(default)]
    pub start_after: u64,
    /// The repairs the slave asks for, by database (see [`super::seed::Repair`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub repairs: BTreeMap<String, super::seed::Repair>,
}

impl SlaveProgress {
    /// Every task up to this one is done with for this slave: finished there, or in its seeds.
    pub fn covered(&self) -> u64 {
        self.finished.max(self.start_after)
    }
}

/// A slave whose last pull was refused, and why (the master's slave listing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedSlave {
    /// What it reported; `last_pull_ns` is when it was refused.
    pub progress: SlaveProgress,
    /// The refusal as the slave was told it.
    pub reason: String,
}

/// Refused slaves listed at most (each is a cluster whose CA the master trusts, so few).
pub const REFUSED_KEPT: usize = 64;

/// One slave's lag on one database (see [`Replication::lag`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Lag {
    pub slave: String,
    pub connected: String,
    pub db: String,
    pub tasks_behind: u64,
    pub seconds_behind: f64,
    /// The slave's read point of the database, if it has one.
    pub replicated: Option<super::task::ReadPoint>,
}

impl MasterQueue {
    /// Every task up to this one is truncated (or gone): tasks are truncated in id order, and
    /// those dropped from the front were truncated.
    pub fn truncated_through(&self) -> u64 {
        let mut through = self
            .tasks
            .get_min()
            .map_or(self.last_task_id, |(id, _)| id.saturating_sub(1));
        for (id, t) in self.tasks.iter() {
            if !t.truncated {
                break;
            }
            through = *id;
        }
        through
    }

    /// Queues a task at the end, in the newest group if it conflicts with none of that
    /// group's tasks; returns its task id.
    pub fn push(&mut self, mut task: MasterTask) -> u64 {
        self.last_task_id += 1;
        task.task_id = self.last_task_id;
        let current = self
            .tasks
            .values()
            .rev()
            .take_while(|t| t.group_id == self.last_group_id && !t.truncated);
        let mut joins = self.last_group_id > 0 && !task.chunks.ddl;
        let mut seen = false;
        for t in current {
            seen = true;
            if t.chunks.conflicts(&task.chunks) {
                joins = false;
                break;
            }
        }
        if !(joins && seen) {
            self.last_group_id += 1;
        }
        task.group_id = self.last_group_id;
        self.tasks.insert(task.task_id, Arc::new(task));
        self.last_task_id
    }
}

impl Replication {
    /// Whether changes to replicated databases become tasks now: an enabled master.
    pub fn queues_tasks(&self) -> bool {
        self.role == Some(ReplicationRole::Master) && self.master.state == ReplicationState::Enabled
    }

    /// A slave's pull: records its progress and truncates what every slave has finished.
    ///
    /// A slave beyond `clusterReplicationSlaveNum` is refused. A new slave replays the queue
    /// from its first task while the queue holds every replicated database's history; else
    /// (a task was truncated, or replication was switched on for a database with tables) it
    /// is started afresh: it pulls from the last task on, with a cut of every replicated
    /// database to seed from ([`super::seed`]). So is an attached slave that reports less
    /// finished than was recorded when tasks in between are truncated (it lost them: rebuilt
    /// from an empty home).
    pub(super) fn record_slave(
        &mut self,
        slave: &str,
        progress: SlaveProgress,
        ctx: &Context,
    ) -> Result<(), ReplicationError> {
        self.require_role(ReplicationRole::Master)?;
        let start_after = match self.slaves.get(slave) {
            None if self.slaves.len() >= self.slave_num as usize => {
                return Err(ReplicationError::TooManySlaves(self.slave_num));
            }
            None if self.master.incomplete || self.master.truncated_through() > 0 => None,
            None => Some(0),
            Some(known)
                if progress.finished < known.finished
                    && progress.finished < self.master.truncated_through() =>
            {
                None
            }
            Some(known) => Some(known.start_after),
        };
        let start_after = match start_after {
            Some(s) => s,
            None => {
                self.start_slave(slave, ctx);
                self.master.last_task_id
            }
        };
        self.refused.remove(slave);
        self.drop_installed_cuts(slave, &progress.seeded);
        self.cut_for_repairs(slave, &progress.repairs, ctx);
        self.slaves.insert(
            slave.to_string(),
            SlaveProgress {
                last_pull_ns: ctx.now_ns,
                start_after,
                ..progress
            },
        );
        self.truncate_finished();
        Ok(())
    }

    /// Records why a slave's pull was refused, for the master's slave listing. At most
    /// [`REFUSED_KEPT`] are kept, the most recent ones.
    pub(super) fn record_refusal(
        &mut self,
        slave: &str,
        progress: &SlaveProgress,
        reason: &str,
        ctx: &Context,
    ) -> Result<(), ReplicationError> {
        self.require_role(ReplicationRole::Master)?;
        // An attached slave refused (its progress does not match) stays attached, holding
        // truncation where it was, and is listed as refused until a pull is admitted again
        // or it is removed.
        self.refused.insert(
            slave.to_string(),
            RefusedSlave {
                progress: SlaveProgress {
                    last_pull_ns: ctx.now_ns,
                    ..progress.clone()
                },
                reason: reason.to_string(),
            },
        );
        while self.refused.len() > REFUSED_KEPT {
            let oldest = self
                .refused
                .iter()
                .min_by_key(|(_, r)| r.progress.last_pull_ns)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => self.refused.remove(&id),
                None => break,
            };
        }
        Ok(())
    }

    /// `removeClusterReplicationSlave(id)`: forgets an attached or refused slave. What only it
    /// had left to finish is truncated (and its task data deleted) as soon as the remaining
    /// slaves finished it. Should it pull again, it is a new slave.
    pub(super) fn remove_slave(&mut self, slave: &str) -> Result<(), ReplicationError> {
        self.require_role(ReplicationRole::Master)?;
        let attached = self.slaves.remove(slave).is_some();
        let refused = self.refused.remove(slave).is_some();
        self.cuts.remove(slave);
        if !attached && !refused {
            return Err(ReplicationError::UnknownSlave(slave.to_string()));
        }
        self.truncate_finished();
        Ok(())
    }

    /// Truncates what every attached slave has finished (nothing while none is attached: the
    /// tasks wait for the first one).
    fn truncate_finished(&mut self) {
        let Some(done) = self.slaves.values().map(SlaveProgress::covered).min() else {
            return;
        };
        let q = &mut self.master;
        // Truncated tasks are a prefix of the queue (each truncation covers `..=done`): only
        // the newly finished ones are visited, and the excess is popped from the front.
        let newly: Vec<u64> = q
            .tasks
            .range(..=done)
            .rev()
            .take_while(|(_, t)| !t.truncated)
            .map(|(id, _)| *id)
            .collect();
        for id in newly {
            if let Some(t) = q.tasks.get_mut(&id) {
                let t = Arc::make_mut(t);
                t.truncated = true;
                // The slaves need it no more.
                t.payload = TaskPayload::Append;
                t.chunks = Chunks::default();
            }
        }
        // Every task up to `done` is truncated now: the (few) queued ones after it are
        // counted, not the truncated ones kept for the status functions. (Should a slave
        // attached later have pulled `done` below tasks already truncated, those count as
        // queued: fewer are dropped, never a queued one.)
        let truncated = q.tasks.len() - q.tasks.range(done.saturating_add(1)..).count();
        for _ in TRUNCATED_KEPT..truncated {
            pop_first(&mut q.tasks);
        }
    }

    /// How far each attached slave is behind, per database with queued tasks it has not
    /// finished and per replicated database: tasks behind, and the age at `ctx.now_ns` of the
    /// oldest of them.
    pub fn lag(&self, ctx: &Context) -> Vec<Lag> {
        let mut out = Vec::new();
        for (id, slave) in &self.slaves {
            let mut per_db: BTreeMap<&str, (u64, i64)> = BTreeMap::new();
            for t in self
                .master
                .tasks
                .range(slave.covered() + 1..)
                .map(|(_, t)| t)
            {
                let e = per_db.entry(t.db.as_str()).or_insert((0, t.submit_ns));
                e.0 += 1;
                e.1 = e.1.min(t.submit_ns);
            }
            for db in ctx.databases.replicated() {
                per_db.entry(db).or_insert((0, ctx.now_ns));
            }
            for (db, (tasks, oldest)) in per_db {
                out.push(Lag {
                    slave: id.clone(),
                    connected: slave.connected.clone(),
                    db: db.to_string(),
                    tasks_behind: tasks,
                    seconds_behind: (ctx.now_ns - oldest).max(0) as f64 / 1e9,
                    replicated: slave.replicated.get(db).cloned(),
                });
            }
        }
        out
    }

    /// A slave's lag per replicated database: the pulled tasks it has not finished, the age
    /// of the oldest of them, and its read point.
    pub fn slave_lag(&self, ctx: &Context) -> Vec<Lag> {
        let s = &self.slave;
        s.databases
            .iter()
            .map(|db| {
                let open: Vec<i64> = s
                    .tasks
                    .range(s.open_from..)
                    .map(|(_, t)| t)
                    .filter(|t| &t.task.db == db && t.state != super::TaskState::Finished)
                    .map(|t| t.task.submit_ns)
                    .collect();
                let oldest = open.iter().copied().min().unwrap_or(ctx.now_ns);
                Lag {
                    slave: self.cluster_id.clone(),
                    connected: String::new(),
                    db: db.clone(),
                    tasks_behind: open.len() as u64,
                    seconds_behind: (ctx.now_ns - oldest).max(0) as f64 / 1e9,
                    replicated: s.read_points.get(db).cloned(),
                }
            })
            .collect()
    }
}
