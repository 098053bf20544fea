//! A slave data node applying replication tasks (`repl.apply`, sent by the slave controller's
//! scheduler): each request runs as one local transaction, as the execution user
//! (`clusterReplicationExecutionUsername`), and finishes its tasks in the same controller log
//! entry as its commit. A task delivered again after it finished is refused by that entry
//! (S01025) and its transaction rolled back, so every task is applied exactly once.
//!
//! - DDL: the master's command, applied by the controller with the task ([`Command::ApplyTask`]).
//! - APPEND: the master's Parquet files of the task are fetched as they are and staged by
//!   the partitions' owners ([`super::files`]); when they cannot be used, the rows
//!   are fetched from the master data node that holds them (`<tid>.task`, streamed over
//!   Flight) and appended. Consecutive APPEND tasks of one table come in one request and are
//!   applied in one transaction; each task's rows are fetched ahead of the appending
//!   (prefetch), so the next task's data arrives while one is appended.
//! - SQL_UPDATE / SQL_DELETE: the statement runs again (its filters and assignments).
//!
//! At most `clusterReplicationWorkerNum` requests run at once, each on a numbered worker;
//! `getSlaveReplicationExecutionStatus()` shows each worker's tasks ([`super::executions`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{new_null_array, RecordBatch};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::executions::{ExecState, Worker};
use crate::controller::client::MetadataView;
use crate::controller::error::MetadataError;
use crate::controller::metadata::{Command, CommandResult, Privilege};
use crate::controller::secret::ScramSecret;
use crate::datanode::{DataNodeError, WriteTxn};
use crate::query::service::decode_rewrite;
use crate::query::table::PorpoiseTable;
use crate::query::Engine;
use crate::replication::model::{Applies, OpType, SlaveTask, TaskPayload, TaskState};
use crate::replication::protocol::{
    columns, is_pending_error, Applied, ApplyRequest, ShippedFile, TaskDataTicket, TaskFiles,
    TaskFilesRequest, APPLY, MISSING_SQLSTATE, TASK_DATA, TASK_FILES,
};
use crate::rpc::client::Peers;
use crate::rpc::server::{reply, Caller, Service};
use crate::rpc::{decode, encode_ticket, RemoteError, RpcError};
use crate::sqlstate::{ErrorCode, SqlState};

/// How long a master data node may take to list a task's files, and how long the slave waits
/// for them to be published there.
const TASK_FILES_TIMEOUT: Duration = Duration::from_secs(2);

/// The rows a task's data files must hold on average to be taken as they are. Each file costs
/// a fetch and an fsync; the rows of small ones are cheaper to take as rows, merged with the
/// other tasks of the request into one file per partition.
const FILE_ROWS_WORTH_TAKING: u64 = 8 * 1024;

/// How many record batches of a task's rows are fetched ahead of the appending.
const PREFETCH_BATCHES: usize = 8;

/// The apply service of a slave data node (`repl.apply`).
pub struct ApplyService {
    engine: Arc<Engine>,
    exec_user: ExecUser,
}

impl ApplyService {
    pub fn new(engine: Arc<Engine>) -> Self {
        ApplyService {
            engine,
            exec_user: ExecUser::default(),
        }
    }
}

#[async_trait]
impl Service for ApplyService {
    fn handles(&self, call: &str) -> bool {
        call == APPLY
    }

    async fn action(&self, _caller: &Caller, call: &str, body: Bytes) -> Bytes {
        match decode::<ApplyRequest>(&body) {
            Ok(req) if call == APPLY => reply(apply(&self.engine, &self.exec_user, req).await),
            Ok(_) => reply::<()>(Err(RemoteError::new(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("unknown replication call {call}"),
            ))),
            Err(e) => reply::<()>(Err(RemoteError::new(
                SqlState::PROTOCOL_VIOLATION,
                format!("malformed request: {e}"),
            ))),
        }
    }
}

/// Why a task failed, as `details` shows it.
pub fn failure(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new(SqlState::INTERNAL_ERROR, e.to_string())
}

/// The controller command of a DDL task, as the master's controller encoded it.
fn ddl_command(encoded: &serde_json::Value) -> Result<Command, RemoteError> {
    serde::Deserialize::deserialize(encoded)
        .map_err(|e: serde_json::Error| failure(format!("the DDL of the task cannot be read: {e}")))
}

fn is_done(e: &MetadataError) -> bool {
    matches!(e, MetadataError::TaskDone { .. })
}

/// The execution user's password check, remembered: it is a PBKDF2 derivation (4096 rounds),
/// too slow to repeat for every task. Redone when the user's stored password changes.
#[derive(Debug, Default)]
pub struct ExecUser {
    /// The stored verifier last found to match the configured password.
    verified: Mutex<Option<ScramSecret>>,
}

impl ExecUser {
    fn password_ok(&self, user: &crate::controller::metadata::UserMeta, password: &str) -> bool {
        let mut verified = crate::lock(&self.verified);
        if verified.as_ref() == Some(&user.secret) {
            return true;
        }
        let ok = crate::query::users::verify_password(user, password);
        *verified = ok.then(|| user.secret.clone());
        ok
    }
}

/// Whether this node's copy of the metadata shows task `task_id` finished (a re-delivery; the
/// commit would refuse it anyway).
fn finished_here(metadata: &MetadataView, task_id: u64) -> bool {
    metadata
        .replication()
        .slave
        .tasks
        .get(&task_id)
        .is_some_and(|t| t.state == TaskState::Finished)
}

/// Applies one request. See the module documentation.
async fn apply(
    engine: &Arc<Engine>,
    exec_user: &ExecUser,
    req: ApplyRequest,
) -> Result<Applied, RemoteError> {
    let started = std::time::Instant::now();
    let replica = engine.replica();
    let worker = replica.worker().await?;
    let queued = started.elapsed();
    let node = engine.node();
    // A node whose copy of the metadata does not catch up has lost its controller: the
    // tasks could not be tried, which does not count against them.
    let metadata = node
        .wait_applied(req.min_applied_index)
        .await
        .map_err(|e| RemoteError::retryable(SqlState::CONNECTION_FAILURE, e.to_string()))?;
    let caught_up = started.elapsed();
    let alias = metadata
        .node(node.id)
        .map(|n| n.alias.clone())
        .unwrap_or_else(|| node.id.to_string());
    let tasks: Vec<&SlaveTask> = req
        .tasks
        .iter()
        .filter(|t| !finished_here(&metadata, t.task.task_id))
        .collect();
    let Some(first) = tasks.first().map(|t| &t.task) else {
        let id = req.tasks.first().map_or(0, |t| t.task.task_id);
        return Ok(already_done(id));
    };
    // Several tasks come together only as APPENDs to one table: one user check covers them.
    let together = |t: &&SlaveTask| {
        t.task.payload == TaskPayload::Append
            && t.task.db == first.db
            && t.task.table == first.table
    };
    if tasks.len() > 1 && !tasks.iter().all(together) {
        return Err(failure(
            "only APPEND tasks of one table are applied together",
        ));
    }
    check_user(engine, exec_user, &metadata, first.op, &first.db)?;
    let applies = Applies {
        task_ids: tasks.iter().map(|t| t.task.task_id).collect(),
        node: alias.clone(),
    };
    let result = match &first.payload {
        TaskPayload::Append => append(engine, &tasks, applies, &worker).await,
        TaskPayload::Command(cmd) => {
            worker.show(tasks[0], ExecState::Executing);
            let r = node
                .controller()
                .write(Command::ApplyTask {
                    task_id: first.task_id,
                    node: alias,
                    cmd: Box::new(ddl_command(cmd)?),
                })
                .await
                .map_err(failure)?;
            match r {
                CommandResult::Err(e) if is_done(&e) => Ok(Applied::AlreadyDone),
                CommandResult::Err(e) => Err(failure(e)),
                _ => Ok(Applied::Done),
            }
        }
        TaskPayload::Rewrite { filters, update } => {
            worker.show(tasks[0], ExecState::Executing);
            let state = engine.base_state();
            let (filters, op) =
                decode_rewrite(&state, filters, update.as_deref()).map_err(failure)?;
            let Some((_, def)) = metadata.table(&first.db, &first.table) else {
                return Err(failure(MetadataError::TableNotFound {
                    db: first.db.clone(),
                    table: first.table.clone(),
                }));
            };
            let table = PorpoiseTable::new(first.db.clone(), def.clone(), node.clone());
            match table.run_dml(&state, &filters, &op, Some(applies)).await {
                Ok(_) => Ok(Applied::Done),
                Err(e) if refused_as_done(&e) => Ok(Applied::AlreadyDone),
                Err(e) => Err(dml_failure(e)),
            }
        }
        TaskPayload::DropPartitions { partitions } => {
            worker.show(tasks[0], ExecState::Executing);
            let mut txn = node.begin(&first.db, &first.table).await.map_err(failure)?;
            txn.applies_tasks(applies);
            let dropped = txn
                .drop_partitions(partitions.iter().cloned().collect())
                .await;
            dropped.map_err(failure)?;
            match txn.commit().await {
                Ok(_) => Ok(Applied::Done),
                Err(e) if refused_as_done(&e) => Ok(Applied::AlreadyDone),
                Err(e) => Err(failure(e)),
            }
        }
    };
    tracing::debug!(
        tasks = ?req.tasks.iter().map(|t| t.task.task_id).collect::<Vec<_>>(),
        op = first.op.name(),
        ok = result.is_ok(),
        worker_wait = ?queued,
        metadata_wait = ?caught_up - queued,
        total = ?started.elapsed(),
        "repl.apply"
    );
    match result {
        Ok(Applied::AlreadyDone) => Ok(already_done(first.task_id)),
        other => other,
    }
}

/// Whether `e` is the controller refusing the commit because the task was finished already
/// (S01025), however deeply it is wrapped.
fn refused_as_done(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(e) = current {
        if e.downcast_ref::<MetadataError>().is_some_and(is_done) {
            return true;
        }
        if let Some(DataNodeError::Metadata(m)) = e.downcast_ref::<DataNodeError>() {
            return is_done(m);
        }
        current = match e.downcast_ref::<datafusion::error::DataFusionError>() {
            Some(datafusion::error::DataFusionError::External(inner)) => Some(inner.as_ref()),
            _ => e.source(),
        };
    }
    false
}

fn already_done(task_id: u64) -> Applied {
    tracing::info!(
        task_id,
        "[asyncReplication] Skipped task with taskId {task_id}. The task is invalid or has already been executed. RefId:S01039"
    );
    Applied::AlreadyDone
}

fn dml_failure(e: datafusion::error::DataFusionError) -> RemoteError {
    failure(crate::query::error::QueryError::from(e))
}

/// The execution user must exist, have the configured password, and hold the privilege the
/// task needs.
pub fn check_user(
    engine: &Engine,
    exec_user: &ExecUser,
    metadata: &MetadataView,
    op: OpType,
    db: &str,
) -> Result<(), RemoteError> {
    let (name, password) = &engine.node().options().replication_user;
    let ok = metadata
        .user(name)
        .is_some_and(|u| exec_user.password_ok(u, password));
    if !ok {
        return Err(failure(format!(
            "the replication execution user \"{name}\" does not exist or its password (clusterReplicationExecutionPassword) is wrong"
        )));
    }
    let (db, privilege) = match op {
        OpType::Append | OpType::SqlUpdate | OpType::SqlDelete | OpType::TruncateTable => {
            (db, Privilege::Write)
        }
        OpType::CreateDomain => (crate::controller::metadata::ALL_DATABASES, Privilege::Ddl),
        _ => (db, Privilege::Ddl),
    };
    metadata
        .check_privilege(name, db, privilege)
        .map_err(failure)
}

/// Appends the rows of APPEND tasks of one table in one transaction that finishes the tasks:
/// as the master's data files where it can ([`super::files`]), otherwise as rows fetched from the
/// master data node that holds the task data.
async fn append(
    engine: &Arc<Engine>,
    tasks: &[&SlaveTask],
    applies: Applies,
    worker: &Worker<'_>,
) -> Result<Applied, RemoteError> {
    let node = engine.node();
    let first = &tasks[0].task;
    let started = std::time::Instant::now();
    let mut txn = node.begin(&first.db, &first.table).await.map_err(failure)?;
    let begun = started.elapsed();
    txn.applies_tasks(applies);
    let files = futures::future::join_all(tasks.iter().map(|t| task_files(engine, &txn, t))).await;
    // The other tasks' rows: one reader per task, each a few batches ahead; dropping `feeds`
    // stops them.
    let feeds: Vec<_> = tasks
        .iter()
        .zip(&files)
        .filter(|(_, files)| files.is_none())
        .map(|(t, _)| {
            let (tx, rx) = mpsc::channel(PREFETCH_BATCHES);
            let reader = tokio::spawn(fetch(engine.clone(), worker.id(), (*t).clone(), tx));
            (t, rx, AbortOnDrop(reader))
        })
        .collect();
    for (task, files) in tasks.iter().zip(files) {
        let Some(files) = files else {
            continue;
        };
        worker.show(task, ExecState::Executing);
        for ((src, partition), files) in files {
            txn.adopt(&src, &partition, files).await.map_err(failure)?;
        }
    }
    let schema = txn.table().input_schema();
    for (task, mut rx, _reader) in feeds {
        worker.show(task, ExecState::Executing);
        while let Some(batch) = rx.recv().await {
            let batch = by_name(&batch?, &schema).map_err(failure)?;
            txn.append(batch).await.map_err(failure)?;
        }
    }
    let appended = started.elapsed();
    let committed = txn.commit().await;
    tracing::debug!(
        task_id = first.task_id,
        begin = ?begun,
        data = ?appended - begun,
        commit = ?started.elapsed() - appended,
        "repl.apply APPEND"
    );
    match committed {
        Ok(_) => Ok(Applied::Done),
        Err(e) if refused_as_done(&e) => Ok(Applied::AlreadyDone),
        Err(e) => Err(failure(e)),
    }
}

/// An APPEND task's data files on the master, by holder and partition, if the slave can take
/// them as they are ([`super::files`]): every holder answered, the files hold all of the task's
/// rows, in this table's physical columns, every partition is in this database's domain, and
/// the files are big enough to be worth it. Only a task's first try takes files: a task that
/// failed once fetches its rows, so a file that cannot be fetched costs one try, not all of
/// them.
async fn task_files(
    engine: &Engine,
    txn: &WriteTxn,
    task: &SlaveTask,
) -> Option<BTreeMap<(String, String), Vec<ShippedFile>>> {
    if task.attempts > 0
        || task.task.rows < FILE_ROWS_WORTH_TAKING
        || task.holder_addrs.is_empty()
        || !txn.can_adopt()
    {
        return None;
    }
    let mut addrs = task.holder_addrs.clone();
    if !addrs.contains(&task.src_addr) {
        addrs.push(task.src_addr.clone());
    }
    let peers = engine.node().master_peers();
    let asks = addrs.iter().map(|addr| {
        let req = TaskFilesRequest {
            tid: task.task.tid,
            db: task.task.db.clone(),
            table: task.task.table.clone(),
            source: *addr == task.src_addr,
        };
        async move {
            // A participant publishes just after the commit; asked first, it says to wait.
            let deadline = tokio::time::Instant::now() + TASK_FILES_TIMEOUT;
            loop {
                let r: Result<TaskFiles, RpcError> =
                    peers.call(addr, TASK_FILES, &req, TASK_FILES_TIMEOUT).await;
                match r {
                    Err(RpcError::Remote(e))
                        if is_pending_error(&e) && tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    r => return (addr, r),
                }
            }
        }
    });
    let columns = columns(&txn.table().physical_schema());
    let mut out: BTreeMap<(String, String), Vec<ShippedFile>> = BTreeMap::new();
    let mut rows = 0;
    for (addr, answer) in futures::future::join_all(asks).await {
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(task_id = task.task.task_id, %addr, error = %e, "task files not available; fetching rows");
                return None;
            }
        };
        if !answer.files.is_empty() && answer.columns != columns {
            tracing::debug!(
                task_id = task.task.task_id,
                "the master's columns differ; fetching rows"
            );
            return None;
        }
        for f in answer.files {
            rows += f.record.rows;
            out.entry((addr.clone(), f.partition.clone()))
                .or_default()
                .push(f);
        }
    }
    // A partition this database does not know yet (each checked once: the check walks the
    // domain).
    let partitions: BTreeSet<&str> = out.keys().map(|(_, p)| p.as_str()).collect();
    if partitions.into_iter().any(|p| txn.owner(p).is_none()) {
        return None;
    }
    let files: usize = out.values().map(Vec::len).sum();
    (rows == task.task.rows && rows >= FILE_ROWS_WORTH_TAKING * files as u64).then_some(out)
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Streams one APPEND task's rows from the master data node into `tx`; the task shows as
/// TRANSMITTED once they have all arrived (unless it is being appended already). A channel
/// that ends without an error carried every row.
async fn fetch(
    engine: Arc<Engine>,
    worker: (u32, u64),
    task: SlaveTask,
    tx: mpsc::Sender<Result<RecordBatch, RemoteError>>,
) {
    let peers: &Arc<Peers> = engine.node().master_peers();
    let src = &task.src_addr;
    let result = async {
        let ticket =
            encode_ticket(TASK_DATA, &TaskDataTicket { tid: task.task.tid }).map_err(failure)?;
        let mut stream = peers.get(src, ticket).await.map_err(missing_or_failure)?;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| {
                missing_or_failure(crate::rpc::client::flight_error(src, "do_get", e))
            })?;
            let rows = batch.num_rows() as u64;
            if tx.send(Ok(batch)).await.is_err() {
                return Ok(false);
            }
            engine
                .node()
                .received
                .rows
                .fetch_add(rows, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(true)
    }
    .await;
    match result {
        Ok(true) => engine
            .replica()
            .show(worker, &task, ExecState::Transmitted, true),
        Ok(false) => {}
        Err(e) => {
            let _ = tx.send(Err(e)).await;
        }
    }
}

/// Task data that is gone reads "Missing taskData" in `details`, as in DolphinDB.
fn missing_or_failure(e: RpcError) -> RemoteError {
    match &e {
        // Not persisted yet: passed on as it is, for the scheduler to try again.
        RpcError::Remote(r) if is_pending_error(r) => r.clone(),
        RpcError::Remote(r) if r.sqlstate == MISSING_SQLSTATE => {
            RemoteError::new(MISSING_SQLSTATE, format!("Missing taskData: {}", r.message))
        }
        // The master data node is out of reach: passed on as a connection failure, for the
        // scheduler to try again without counting it against the task.
        RpcError::Remote(_) => failure(e),
        _ if e.retryable() => RemoteError::from_error(&e),
        _ => failure(e),
    }
}

/// Rows of the master's table as this table's input: columns matched by name, a column the
/// rows lack is NULL.
fn by_name(
    batch: &RecordBatch,
    schema: &arrow::datatypes::SchemaRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => arrow::compute::cast(c, f.data_type()),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}
