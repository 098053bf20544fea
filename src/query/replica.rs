//! A slave data node applying replication tasks (`repl.apply`, sent by the slave controller's
//! scheduler): each task runs as one local transaction, as the execution user
//! (`clusterReplicationExecutionUsername`), and finishes the task in the same controller log
//! entry as its commit. A task delivered again after it finished is refused by that entry
//! (S01025) and its transaction rolled back, so every task is applied exactly once.
//!
//! - DDL: the master's command, applied by the controller with the task ([`Command::ApplyTask`]).
//! - APPEND: the rows are fetched from the master data node that holds them
//!   (`<tid>.task`, streamed over Flight) and appended.
//! - SQL_UPDATE / SQL_DELETE: the statement runs again (its filters and assignments).

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{new_null_array, RecordBatch};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::service::{decode_rewrite, DataTicket};
use super::table::PorpoiseTable;
use super::Engine;
use crate::controller::metadata::{Command, CommandResult, Metadata, MetadataError, Privilege};
use crate::controller::replication::{OpType, SlaveTask, TaskPayload};
use crate::datanode::{task_data, DataNodeError};
use crate::rpc::{encode, RemoteError, RpcError};

/// The action applying one task.
pub const APPLY: &str = "repl.apply";

/// How long one task may take.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(600);

/// `repl.apply`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApplyRequest {
    pub task: SlaveTask,
}

/// How a task ended on the data node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    Done,
    /// Finished before (S01039): nothing was applied this time.
    AlreadyDone,
}

/// Why a task failed, as `details` shows it.
fn failure(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new("XX000", e.to_string())
}

fn is_done(e: &MetadataError) -> bool {
    matches!(e, MetadataError::TaskDone { .. })
}

/// The execution user's password check, remembered: it is a PBKDF2 derivation (4096 rounds),
/// too slow to repeat for every task. Redone when the user's stored password changes.
#[derive(Debug, Default)]
pub struct ExecUser {
    /// The stored salted password last found to match the configured password.
    verified: std::sync::Mutex<Option<Vec<u8>>>,
}

impl ExecUser {
    fn password_ok(&self, user: &crate::controller::metadata::UserMeta, password: &str) -> bool {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.as_deref() == Some(user.salted_password.as_slice()) {
            return true;
        }
        let ok = super::users::verify_password(user, password);
        *verified = ok.then(|| user.salted_password.clone());
        ok
    }
}

/// Applies one task. See the module documentation.
pub async fn apply(
    engine: &Arc<Engine>,
    exec_user: &ExecUser,
    req: ApplyRequest,
) -> Result<Applied, RemoteError> {
    let node = engine.node();
    let task = &req.task.task;
    let task_id = task.task_id;
    let metadata = node.controller().metadata();
    let alias = metadata
        .node(node.id)
        .map(|n| n.alias.clone())
        .unwrap_or_else(|| node.id.to_string());
    check_user(engine, exec_user, &metadata, task.op, &task.db)?;
    match node
        .controller()
        .write(Command::TaskStarted {
            task_id,
            node: alias.clone(),
        })
        .await
        .map_err(failure)?
    {
        CommandResult::Err(e) if is_done(&e) => return Ok(already_done(task_id)),
        CommandResult::Err(e) => return Err(failure(e)),
        _ => {}
    }
    let result = match &task.payload {
        TaskPayload::Command(cmd) => {
            let r = node
                .controller()
                .write(Command::ApplyTask {
                    task_id,
                    node: alias,
                    cmd: cmd.clone(),
                })
                .await
                .map_err(failure)?;
            match r {
                CommandResult::Err(e) if is_done(&e) => Ok(Applied::AlreadyDone),
                CommandResult::Err(e) => Err(failure(e)),
                _ => Ok(Applied::Done),
            }
        }
        TaskPayload::Append => append(engine, &req.task, alias).await,
        TaskPayload::Rewrite { filters, update } => {
            let state = engine.base_state();
            let (filters, op) =
                decode_rewrite(&state, filters, update.as_deref()).map_err(failure)?;
            let Some((_, def)) = metadata.table(&task.db, &task.table) else {
                return Err(failure(MetadataError::TableNotFound {
                    db: task.db.clone(),
                    table: task.table.clone(),
                }));
            };
            let table = PorpoiseTable::new(task.db.clone(), def.clone(), node.clone());
            match table
                .run_dml(&state, &filters, &op, Some((task_id, alias)))
                .await
            {
                Ok(_) => Ok(Applied::Done),
                Err(e) if refused_as_done(&e) => Ok(Applied::AlreadyDone),
                Err(e) => Err(dml_failure(e)),
            }
        }
    };
    match result {
        Ok(Applied::AlreadyDone) => Ok(already_done(task_id)),
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
    failure(super::error::QueryError::from(e))
}

/// The execution user must exist, have the configured password, and hold the privilege the
/// task needs.
fn check_user(
    engine: &Engine,
    exec_user: &ExecUser,
    metadata: &Metadata,
    op: OpType,
    db: &str,
) -> Result<(), RemoteError> {
    let (name, password) = &engine.node().options().replication_user;
    let ok = metadata
        .users
        .get(name)
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

/// Fetches an APPEND's rows from the master data node and appends them in one transaction
/// that finishes the task.
async fn append(
    engine: &Arc<Engine>,
    task: &SlaveTask,
    alias: String,
) -> Result<Applied, RemoteError> {
    let node = engine.node();
    let t = &task.task;
    let ticket = encode(&DataTicket::TaskData { tid: t.tid }).map_err(failure)?;
    let mut stream = node
        .peers()
        .get(&task.src_addr, ticket)
        .await
        .map_err(missing_or_failure)?;
    let mut txn = node.begin(&t.db, &t.table).await.map_err(failure)?;
    txn.applies_task(t.task_id, alias);
    let schema = txn.table().input_schema();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| {
            missing_or_failure(crate::rpc::client::flight_error(
                &task.src_addr,
                "do_get",
                e,
            ))
        })?;
        let batch = by_name(&batch, &schema).map_err(failure)?;
        txn.append(batch).await.map_err(failure)?;
    }
    match txn.commit().await {
        Ok(_) => Ok(Applied::Done),
        Err(e) if refused_as_done(&e) => Ok(Applied::AlreadyDone),
        Err(e) => Err(failure(e)),
    }
}

/// Task data that is gone reads "Missing taskData" in `details`, as in DolphinDB.
fn missing_or_failure(e: RpcError) -> RemoteError {
    match &e {
        RpcError::Remote(r) if r.sqlstate == task_data::MISSING_SQLSTATE => RemoteError::new(
            task_data::MISSING_SQLSTATE,
            format!("Missing taskData: {}", r.message),
        ),
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
