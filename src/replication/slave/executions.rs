//! A slave data node's replication workers (`clusterReplicationWorkerNum`) and the tasks on
//! them, for `getSlaveReplicationExecutionStatus()`: [`super::apply`] takes a worker for each
//! request and shows its tasks as their data arrives and as they are applied.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::replication::model::SlaveTask;
use crate::rpc::RemoteError;
use crate::sqlstate::SqlState;

/// Where a task is on its worker (`getSlaveReplicationExecutionStatus().state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecState {
    /// Its data has arrived; it waits for its turn.
    Transmitted,
    /// Being applied.
    Executing,
}

impl ExecState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecState::Transmitted => "TRANSMITTED",
            ExecState::Executing => "EXECUTING",
        }
    }
}

/// A task on a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub execution_set: u8,
    pub worker: u32,
    pub task_id: u64,
    pub state: ExecState,
}

/// This node's replication workers and the tasks on them.
#[derive(Debug)]
pub struct Replica {
    workers: tokio::sync::Semaphore,
    state: Mutex<Workers>,
}

#[derive(Debug, Default)]
struct Workers {
    /// Worker numbers in use, each with the request it runs.
    busy: BTreeMap<u32, u64>,
    /// The last request number given.
    last_run: u64,
    /// Tasks on workers, by task id, with their request.
    tasks: BTreeMap<u64, (u64, Execution)>,
}

impl Replica {
    /// `workers`: `clusterReplicationWorkerNum`.
    pub fn new(workers: usize) -> Self {
        Replica {
            workers: tokio::sync::Semaphore::new(workers.max(1)),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Workers> {
        crate::lock(&self.state)
    }

    /// The tasks on this node's workers, by worker.
    pub fn executions(&self) -> Vec<Execution> {
        let mut out: Vec<Execution> = self.lock().tasks.values().map(|(_, e)| e.clone()).collect();
        out.sort_by_key(|e| (e.worker, e.task_id));
        out
    }

    /// Waits for a free worker.
    pub async fn worker(&self) -> Result<Worker<'_>, RemoteError> {
        let permit = self
            .workers
            .acquire()
            .await
            .map_err(|e| RemoteError::new(SqlState::INTERNAL_ERROR, e.to_string()))?;
        let mut state = self.lock();
        let number = (0..).find(|n| !state.busy.contains_key(n)).unwrap_or(0);
        state.last_run += 1;
        let run = state.last_run;
        state.busy.insert(number, run);
        Ok(Worker {
            replica: self,
            number,
            run,
            _permit: permit,
        })
    }

    /// Shows `task` in `state` on the worker running request `run`, if it still does;
    /// `only_new`: unless the task is shown already.
    pub fn show(
        &self,
        (number, run): (u32, u64),
        task: &SlaveTask,
        state: ExecState,
        only_new: bool,
    ) {
        let mut workers = self.lock();
        if workers.busy.get(&number) != Some(&run)
            || (only_new && workers.tasks.contains_key(&task.task.task_id))
        {
            return;
        }
        let execution = Execution {
            execution_set: task.task.execution_set,
            worker: number,
            task_id: task.task.task_id,
            state,
        };
        workers.tasks.insert(task.task.task_id, (run, execution));
    }
}

/// A worker taken for one request: its tasks leave the status when it is dropped.
pub struct Worker<'a> {
    replica: &'a Replica,
    number: u32,
    run: u64,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Worker<'_> {
    pub fn id(&self) -> (u32, u64) {
        (self.number, self.run)
    }

    pub fn show(&self, task: &SlaveTask, state: ExecState) {
        self.replica.show(self.id(), task, state, false);
    }
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        let mut state = self.replica.lock();
        state.tasks.retain(|_, (run, _)| *run != self.run);
        state.busy.remove(&self.number);
    }
}
