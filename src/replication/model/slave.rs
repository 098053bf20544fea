//! The slave's side of the queues: tasks pulled from the master, spread over execution
//! queues by execution set and database, and their states as the scheduler runs them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use super::master::{pop_first, TRUNCATED_KEPT};
use super::task::{PulledTask, ReadPoint, SlaveTask, TaskState};
use super::{Context, Replication, ReplicationError, ReplicationRole, ReplicationState};
use crate::catalog::fnv1a;

/// A slave's pulled tasks and their progress.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlaveQueue {
    pub state: ReplicationState,
    /// The last task pulled from the master.
    pub last_pulled: u64,
    /// Pulled tasks: unfinished ones, and the most recent finished ones (at most
    /// [`TRUNCATED_KEPT`]). Shared between metadata copies as the master's tasks are.
    pub tasks: OrdMap<u64, Arc<SlaveTask>>,
    /// Every task below this one is finished (0 until a task finished): where the scheduler
    /// and the trimming of finished tasks start, instead of walking the finished tasks kept
    /// for the status functions. Tasks never become unfinished again and later pulls bring
    /// higher ids, so it only moves up.
    #[serde(default)]
    pub open_from: u64,
    /// Databases replication writes to: clients may not (S01023).
    pub databases: BTreeSet<String>,
    /// Why pulls from the master fail, while they do (`getClusterReplicationMetrics`'s
    /// `pullError`): a refusal (an untrusted certificate, `clusterReplicationSlaveNum`), an
    /// unreachable or unverifiable master.
    #[serde(default)]
    pub pull_error: Option<String>,
    /// The seed of each database the master sent one for: the last one (see
    /// [`super::seed`]).
    #[serde(default)]
    pub seeds: BTreeMap<String, super::seed::SlaveSeed>,
    /// Each database's read point: the latest state that is a prefix of the master's commit
    /// order (see [`ReadPoint`]).
    #[serde(default)]
    pub read_points: BTreeMap<String, ReadPoint>,
    /// The highest finished task of each database.
    #[serde(default)]
    pub finished_through: BTreeMap<String, u64>,
    /// The master's data nodes (`host:port`), as its last answered pull named them.
    #[serde(default)]
    pub master_nodes: Vec<String>,
    /// Repairs asked for (`repairClusterReplication`) that no cut answered yet, by database.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub repairs: BTreeMap<String, super::seed::Repair>,
    /// What skipped tasks would have changed, by database: it differs from the master's until
    /// a seed or repair replaces it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub diverged: BTreeMap<String, super::seed::Scope>,
}

/// After this many failed executions of one task a slave stops (state STOPPED).
pub const MAX_ATTEMPTS: u32 = 30;

impl SlaveQueue {
    /// The first task that is not finished, looked for from [`Self::open_from`] on.
    fn first_unfinished(&self) -> Option<u64> {
        self.tasks
            .range(self.open_from..)
            .find(|(_, t)| t.state != TaskState::Finished)
            .map(|(id, _)| *id)
    }

    /// Moves [`Self::open_from`] up to the first unfinished task, and keeps at most
    /// [`TRUNCATED_KEPT`] finished tasks below it. Each finished task is stepped over once.
    fn trim_finished(&mut self) {
        self.open_from = self.first_unfinished().unwrap_or(self.last_pulled + 1);
        let finished = self.tasks.len() - self.tasks.range(self.open_from..).count();
        for _ in TRUNCATED_KEPT..finished {
            pop_first(&mut self.tasks);
        }
    }

    /// The task `task_id`, unless it is finished.
    fn open_task(&mut self, task_id: u64, node: &str) -> Result<&mut SlaveTask, ReplicationError> {
        match self.tasks.get_mut(&task_id) {
            Some(t) if t.state != TaskState::Finished => Ok(Arc::make_mut(t)),
            _ => Err(ReplicationError::TaskDone {
                task_id,
                node: node.to_string(),
            }),
        }
    }
}

impl Replication {
    /// Every task up to this one is finished here (slave).
    pub fn finished_watermark(&self) -> u64 {
        let s = &self.slave;
        s.first_unfinished().map_or(s.last_pulled, |id| id - 1)
    }

    /// Execution queues per execution set: `clusterReplicationQueue`, by default 4 per data
    /// node.
    pub fn slave_queues(&self, data_nodes: usize) -> u32 {
        match self.queues {
            0 => 4 * (data_nodes.max(1) as u32),
            n => n,
        }
    }

    /// Tasks pulled from the master: queued by execution set and database. With them come
    /// the seeds the master sent ([`super::seed`]); when it starts this slave afresh, every
    /// task up to `start_after` is in those seeds.
    pub(super) fn record_pulled(
        &mut self,
        tasks: &[PulledTask],
        seeds: &[super::seed::PulledSeed],
        start_after: Option<u64>,
        ctx: &Context,
    ) -> Result<(), ReplicationError> {
        self.require_role(ReplicationRole::Slave)?;
        // Stopped by stopClusterReplication(): a pull that was under way then brings nothing
        // in; its tasks are pulled again once replication starts.
        if self.slave.state == ReplicationState::Disabled {
            return Ok(());
        }
        if let Some(start) = start_after.filter(|s| *s > self.slave.last_pulled) {
            let covered: Vec<u64> = self
                .slave
                .tasks
                .range(self.slave.open_from..)
                .take_while(|(id, _)| **id <= start)
                .filter(|(_, t)| t.state != TaskState::Finished)
                .map(|(id, _)| *id)
                .collect();
            self.cover(&covered, start, ctx);
            self.slave.last_pulled = start;
        }
        self.record_seeds(seeds, ctx);
        let queues = self.slave_queues(ctx.data_nodes);
        for p in tasks {
            let id = p.task.task_id;
            if id <= self.slave.last_pulled {
                continue;
            }
            self.slave.last_pulled = id;
            let covered = self.covered_by_seed(&p.task.db, id);
            if self
                .db_scope
                .as_ref()
                .is_some_and(|scope| !scope.contains(&p.task.db))
            {
                continue;
            }
            let set = u32::from(p.task.execution_set.min(1));
            let queue_id = set * queues + (fnv1a(p.task.db.as_bytes()) % u64::from(queues)) as u32;
            self.slave.databases.insert(p.task.db.clone());
            self.slave.tasks.insert(
                id,
                Arc::new(SlaveTask {
                    task: p.task.clone(),
                    src_addr: p.src_addr.clone(),
                    holder_addrs: p.holder_addrs.clone(),
                    create_ns: ctx.now_ns,
                    queue_id,
                    state: if covered.is_some() {
                        TaskState::Finished
                    } else {
                        TaskState::Waiting
                    },
                    attempts: 0,
                    details: covered
                        .map(|cut| format!("covered by the seed at task {cut}"))
                        .unwrap_or_default(),
                    finish_ns: if covered.is_some() { ctx.now_ns } else { 0 },
                    execution_node: String::new(),
                }),
            );
        }
        self.slave.trim_finished();
        Ok(())
    }

    /// Fails unless task `task_id` may still be applied (before applying a DDL task).
    pub fn check_task_open(&mut self, task_id: u64, node: &str) -> Result<(), ReplicationError> {
        self.slave.open_task(task_id, node).map(|_| ())
    }

    /// Marks tasks finished by `node`, in the same log entry as their effect (exactly once):
    /// all of them, or none if one is finished already (a transaction applying several APPEND
    /// tasks).
    pub fn finish_tasks(
        &mut self,
        task_ids: &[u64],
        node: &str,
        ctx: &Context,
    ) -> Result<(), ReplicationError> {
        let s = &mut self.slave;
        for id in task_ids {
            s.open_task(*id, node)?;
        }
        for id in task_ids {
            let t = s.open_task(*id, node)?;
            t.state = TaskState::Finished;
            t.finish_ns = ctx.now_ns;
            t.execution_node = node.to_string();
            t.details.clear();
        }
        self.release_ended(task_ids);
        self.slave.trim_finished();
        self.advance_read_points(task_ids, ctx);
        Ok(())
    }

    /// Releases the databases whose replication the finished `task_ids` end (DROP_DB,
    /// DISABLE_REPLICATION: the master dropped the database or stopped replicating it), so
    /// clients may write them here again, unless a later task of the database is still to
    /// run (the master recreated or re-enabled it meanwhile).
    fn release_ended(&mut self, task_ids: &[u64]) {
        let s = &mut self.slave;
        for id in task_ids {
            let Some(t) = s.tasks.get(id) else { continue };
            if !t.task.op.ends_replication() {
                continue;
            }
            let db = &t.task.db;
            let later = s
                .tasks
                .range(id + 1..)
                .any(|(_, l)| &l.task.db == db && l.state != TaskState::Finished);
            if !later {
                let db = db.clone();
                s.databases.remove(&db);
                // Nothing of it is replicated any more: nothing to repair. A repair cut is
                // reported installed, so the master releases it.
                s.repairs.remove(&db);
                s.diverged.remove(&db);
                if let Some(seed) = s.seeds.get_mut(&db).filter(|x| x.cut.repair.is_some()) {
                    if seed.state != super::seed::SeedState::Done {
                        seed.state = super::seed::SeedState::Done;
                        seed.error =
                            "abandoned: the master stopped replicating the database".into();
                    }
                }
            }
        }
    }

    /// The scheduler sent `task_ids` to data node `node`; those finished meanwhile are left
    /// as they are.
    pub(super) fn start_tasks(&mut self, task_ids: &[u64], node: &str) {
        for id in task_ids {
            if let Ok(t) = self.slave.open_task(*id, node) {
                t.state = TaskState::Executing;
                t.execution_node = node.to_string();
            }
        }
    }

    /// Tasks sent together that failed together wait again, to run one by one.
    pub(super) fn requeue_tasks(&mut self, task_ids: &[u64]) {
        for id in task_ids {
            if let Some(t) = self.slave.tasks.get_mut(id) {
                if t.state == TaskState::Executing {
                    Arc::make_mut(t).state = TaskState::Waiting;
                }
            }
        }
    }

    /// A failed execution: after [`MAX_ATTEMPTS`] the slave stops.
    pub(super) fn fail_task(
        &mut self,
        task_id: u64,
        node: &str,
        details: &str,
    ) -> Result<(), ReplicationError> {
        let t = self.slave.open_task(task_id, node)?;
        t.state = TaskState::Failed;
        t.attempts += 1;
        t.details = details.to_string();
        t.execution_node = node.to_string();
        if t.attempts >= MAX_ATTEMPTS {
            self.slave.state = ReplicationState::Stopped;
        }
        Ok(())
    }

    /// `skipClusterReplicationTask`: the tasks count as finished without running.
    pub(super) fn skip_tasks(
        &mut self,
        ids: &[u64],
        ctx: &Context,
    ) -> Result<(), ReplicationError> {
        self.require_role(ReplicationRole::Slave)?;
        // All or nothing: an id this slave does not hold (never pulled, out of
        // `slaveReplicationDBScope`, or finished so long ago it is no longer listed) is a
        // mistake worth telling, not a no-op.
        let unknown: Vec<u64> = ids
            .iter()
            .filter(|id| !self.slave.tasks.contains_key(*id))
            .copied()
            .collect();
        if !unknown.is_empty() {
            return Err(ReplicationError::UnknownTasks { ids: unknown });
        }
        for id in ids {
            let Some(t) = self.slave.tasks.get_mut(id) else {
                continue;
            };
            if t.state != TaskState::Finished {
                let t = Arc::make_mut(t);
                t.state = TaskState::Finished;
                t.finish_ns = ctx.now_ns;
                t.details = "skipped by skipClusterReplicationTask: what it changes is diverged \
                             until repairClusterReplication"
                    .into();
                let task = t.task.clone();
                self.diverge(&task);
            }
        }
        self.release_ended(ids);
        self.slave.trim_finished();
        self.advance_read_points(ids, ctx);
        Ok(())
    }

    /// After tasks finished: each of their databases whose finished tasks are a prefix of its
    /// tasks now reads at this entry (see [`ReadPoint`]). A database being seeded has no read
    /// point until its seed is installed.
    pub(super) fn advance_read_points(&mut self, task_ids: &[u64], ctx: &Context) {
        let s = &mut self.slave;
        let mut dbs = BTreeSet::new();
        for id in task_ids {
            if let Some(t) = s.tasks.get(id).filter(|t| t.state == TaskState::Finished) {
                let through = s.finished_through.entry(t.task.db.clone()).or_default();
                *through = (*through).max(*id);
                dbs.insert(t.task.db.clone());
            }
        }
        for db in dbs {
            if self.seeding(&db) {
                continue;
            }
            let s = &mut self.slave;
            let through = s.finished_through.get(&db).copied().unwrap_or(0);
            let first_open = s
                .tasks
                .range(s.open_from..)
                .find(|(_, t)| t.task.db == db && t.state != TaskState::Finished)
                .map(|(id, _)| *id);
            if first_open.is_some_and(|open| open < through) {
                continue;
            }
            let (master_ns, master_index) = s
                .tasks
                .get(&through)
                .map_or((0, 0), |t| (t.task.submit_ns, t.task.commit_index));
            s.read_points.insert(
                db,
                ReadPoint {
                    task_id: through,
                    master_ns,
                    index: ctx.index,
                    master_index,
                },
            );
        }
    }

    /// The controller log index reads of `db` happen at on this slave: its read point; `None`
    /// when `db` is not replicated here (reads are at the latest index). Refused while the
    /// database is being seeded.
    pub fn read_index(&self, db: &str) -> Result<Option<u64>, ReplicationError> {
        if self.role != Some(ReplicationRole::Slave) || !self.slave.databases.contains(db) {
            return Ok(None);
        }
        if self.seeding(db) {
            return Err(ReplicationError::Seeding(db.to_string()));
        }
        Ok(self.slave.read_points.get(db).map(|p| p.index))
    }

    /// `startClusterReplication` / `stopClusterReplication` on a slave. Starting re-runs
    /// failed tasks from a fresh count.
    pub(super) fn set_slave_state(
        &mut self,
        state: ReplicationState,
    ) -> Result<(), ReplicationError> {
        self.require_role(ReplicationRole::Slave)?;
        let s = &mut self.slave;
        s.state = state;
        if state == ReplicationState::Enabled {
            let failed: Vec<u64> = s
                .tasks
                .iter()
                .filter(|(_, t)| t.state == TaskState::Failed)
                .map(|(id, _)| *id)
                .collect();
            for id in failed {
                if let Some(t) = s.tasks.get_mut(&id) {
                    Arc::make_mut(t).attempts = 0;
                }
            }
        }
        Ok(())
    }

    /// Fails if `db` is written by replication on this slave: clients may only read it, also
    /// while replication is stopped (`stopClusterReplication`, or STOPPED by failures), since
    /// a client's write would make the slave diverge from the master for good. The database
    /// is released when the master drops it or stops replicating it (see
    /// [`Self::finish_tasks`]); making a slave writable otherwise is promotion.
    pub fn check_not_replica(&self, db: &str) -> Result<(), ReplicationError> {
        if self.role == Some(ReplicationRole::Slave) && self.slave.databases.contains(db) {
            return Err(ReplicationError::Replica(db.to_string()));
        }
        Ok(())
    }
}
