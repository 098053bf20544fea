//! A slave data node installing a seed (`repl.seed`, sent by the slave controller's
//! scheduler; see [`crate::replication::model::seed`]), as the execution user:
//! 1. the cut's catalog is installed (`SeedCatalog`);
//! 2. every master data node lists the files each table of the cut holds there at the cut's
//!    index (`dn.seed_files`); the totals are recorded for the status function;
//! 3. each table not installed yet is installed by one transaction that removes every row the
//!    table has here and adopts the master's files as they are (fetched by each partition's
//!    owner into its seed cache, so a file is fetched once however often the seed is tried),
//!    whose commit records the table as seeded;
//! 4. the seed is marked done, and the database's tasks after the cut may run.
//!
//! A repair (`repairClusterReplication`) is a seed of some tables' partitions: the scheduler
//! sends it once every task of the database up to its cut is applied, it installs no catalog
//! (the tables must be the master's already), and each table's transaction removes and adopts
//! the named partitions only, so the whole database is the master's at the cut.
//!
//! A try that fails (a node down on either side, a cut link) is recorded and tried again by
//! the scheduler; what it installed and fetched stays.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use super::apply::{check_user, failure, ExecUser};
use crate::catalog::TableDef;
use crate::controller::error::MetadataError;
use crate::controller::metadata::{Command, CommandResult};
use crate::query::Engine;
use crate::replication::model::{
    OpType, Replication, ReplicationCommand, SeedState, SeedStep, SlaveSeed, TableScope,
};
use crate::replication::protocol::{
    columns, is_pending_error, SeedFilesRequest, SeedRequest, ShippedFile, SEED,
    SEED_BUSY_SQLSTATE, SEED_FILES,
};
use crate::rpc::server::{reply, Caller, Service};
use crate::rpc::{decode, RemoteError, RpcError};
use crate::sqlstate::SqlState;
use bytes::Bytes;

/// How long a master data node may take to list a table's files at a cut.
const SEED_FILES_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The seeds being installed on this node, so a request sent again while one runs (by a new
/// controller leader) does not run it twice.
#[derive(Debug, Default)]
pub struct Running(Mutex<HashSet<(String, u64)>>);

/// Marks a seed running here until dropped.
struct RunningGuard<'a> {
    running: &'a Running,
    key: (String, u64),
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        crate::lock(&self.running.0).remove(&self.key);
    }
}

/// The seed service of a slave data node (`repl.seed`).
pub struct SeedService {
    engine: Arc<Engine>,
    exec_user: ExecUser,
    running: Running,
}

impl SeedService {
    pub fn new(engine: Arc<Engine>) -> Self {
        SeedService {
            engine,
            exec_user: ExecUser::default(),
            running: Running::default(),
        }
    }
}

#[async_trait::async_trait]
impl Service for SeedService {
    fn handles(&self, call: &str) -> bool {
        call == SEED
    }

    async fn action(&self, _caller: &Caller, _call: &str, body: Bytes) -> Bytes {
        match decode::<SeedRequest>(&body) {
            Ok(req) => reply(install(&self.engine, &self.exec_user, &self.running, req).await),
            Err(e) => reply::<()>(Err(RemoteError::new(
                SqlState::PROTOCOL_VIOLATION,
                format!("malformed request: {e}"),
            ))),
        }
    }
}

/// A table's files at the cut, by the master data node holding them and partition.
type TableFiles = BTreeMap<(String, String), Vec<ShippedFile>>;

/// Installs the seed `req` names. See the module documentation.
async fn install(
    engine: &Arc<Engine>,
    exec_user: &ExecUser,
    running: &Running,
    req: SeedRequest,
) -> Result<(), RemoteError> {
    let node = engine.node();
    let metadata = node
        .wait_applied(req.min_applied_index)
        .await
        .map_err(|e| RemoteError::retryable(SqlState::CONNECTION_FAILURE, e.to_string()))?;
    let Some(seed) = open_seed(&metadata, &req) else {
        return Ok(());
    };
    let key = (req.db.clone(), req.cut_task);
    if !crate::lock(&running.0).insert(key.clone()) {
        return Err(RemoteError::retryable(
            SEED_BUSY_SQLSTATE,
            format!("the seed of {} is being installed on this node", req.db),
        ));
    }
    let _guard = RunningGuard { running, key };
    // A seed creates the database and its tables, then writes their rows: the execution user
    // needs what the tasks it stands for would need (WRITE is checked once the database is
    // there). A repair only writes rows.
    if seed.cut.repair.is_none() {
        check_user(engine, exec_user, &metadata, OpType::CreateDomain, &req.db)?;
    }

    crate::fault::delay_point("seed-catalog").await;
    let r = node
        .controller()
        .write(Command::SeedCatalog {
            db: req.db.clone(),
            cut_task: req.cut_task,
        })
        .await
        .map_err(failure)?;
    match r {
        CommandResult::Err(MetadataError::SeedDone { .. }) => return Ok(()),
        // Tried again it would fail again, holding the database's later tasks for ever.
        CommandResult::Err(e @ MetadataError::RepairCatalog { .. }) => {
            let cmd = Command::Replication(ReplicationCommand::RepairAbandoned {
                db: req.db.clone(),
                cut_task: req.cut_task,
                error: e.to_string(),
            });
            node.controller().write(cmd).await.map_err(failure)?;
            tracing::warn!(db = %req.db, cut_task = req.cut_task, error = %e, "a repair was abandoned");
            return Ok(());
        }
        CommandResult::Err(e) => return Err(failure(e)),
        _ => {}
    }
    let installed = node.controller().metadata();
    check_user(engine, exec_user, &installed, OpType::Append, &req.db)?;

    let tables = Replication::seed_tables(&seed);
    let mut listed = BTreeMap::new();
    for table in &tables {
        let mut files = list_files(engine, &seed, table).await?;
        if let Some(scope) = repair_scope(&seed, &table.name) {
            files.retain(|(_, partition), _| scope.covers(partition));
        }
        listed.insert(table.name.clone(), files);
    }
    let partitions: u64 = listed
        .values()
        .map(|files| files.keys().map(|(_, p)| p).collect::<BTreeSet<_>>().len() as u64)
        .sum();
    let bytes: u64 = listed
        .values()
        .flat_map(|files| files.values().flatten())
        .map(|f| f.record.size)
        .sum();
    if seed.partitions_total != Some(partitions) || seed.bytes_total != Some(bytes) {
        let cmd = Command::Replication(ReplicationCommand::SeedTotals {
            db: req.db.clone(),
            cut_task: req.cut_task,
            partitions,
            bytes,
        });
        node.controller().write(cmd).await.map_err(failure)?;
    }

    for table in tables {
        if seed.tables_done.contains(&table.name) {
            continue;
        }
        crate::fault::delay_point("seed-table").await;
        let files = listed.remove(&table.name).unwrap_or_default();
        install_table(engine, &seed, table, files).await?;
    }

    let r = node
        .controller()
        .write(Command::Replication(ReplicationCommand::SeedDone {
            db: req.db.clone(),
            cut_task: req.cut_task,
        }))
        .await
        .map_err(failure)?;
    match r {
        CommandResult::Err(MetadataError::SeedDone { .. }) => Ok(()),
        CommandResult::Err(e) => Err(failure(e)),
        _ => {
            tracing::info!(db = %req.db, cut_task = req.cut_task, partitions, bytes, "seed installed");
            Ok(())
        }
    }
}

/// What a repair replaces of `table` (`None`: a whole seed, which replaces every table).
fn repair_scope<'s>(seed: &'s SlaveSeed, table: &str) -> Option<&'s TableScope> {
    seed.cut.repair.as_ref().and_then(|r| r.tables.get(table))
}

/// The seed `req` names, unless it is installed or replaced.
fn open_seed(
    metadata: &crate::controller::client::MetadataView,
    req: &SeedRequest,
) -> Option<SlaveSeed> {
    metadata
        .replication()
        .slave
        .seeds
        .get(&req.db)
        .filter(|s| s.cut.task_id == req.cut_task && s.state != SeedState::Done)
        .cloned()
}

/// The files of `table` at the seed's cut on every master data node.
async fn list_files(
    engine: &Engine,
    seed: &SlaveSeed,
    table: &TableDef,
) -> Result<TableFiles, RemoteError> {
    let peers = engine.node().master_peers();
    let req = SeedFilesRequest {
        table: (table.id, table.generation),
        at: seed.cut.commit_index,
    };
    let mut out = TableFiles::new();
    for addr in &seed.nodes {
        // A master data node publishes just after a commit; asked first, it says to wait.
        let deadline = tokio::time::Instant::now() + SEED_FILES_TIMEOUT;
        let files: Vec<ShippedFile> = loop {
            let r: Result<Vec<ShippedFile>, RpcError> =
                peers.call(addr, SEED_FILES, &req, SEED_FILES_TIMEOUT).await;
            match r {
                Err(RpcError::Remote(e))
                    if is_pending_error(&e) && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Ok(files) => break files,
                Err(e) => return Err(passed_on(e)),
            }
        };
        for f in files {
            out.entry((addr.clone(), f.partition.clone()))
                .or_default()
                .push(f);
        }
    }
    Ok(out)
}

/// A failure reaching the master, passed on so the scheduler can tell a connection failure.
fn passed_on(e: RpcError) -> RemoteError {
    match e {
        RpcError::Remote(r) => r,
        other => RemoteError::from_error(&other),
    }
}

/// Replaces the rows of `table` here by its files at the cut, in one transaction that
/// records the table as seeded.
async fn install_table(
    engine: &Engine,
    seed: &SlaveSeed,
    table: &TableDef,
    files: TableFiles,
) -> Result<(), RemoteError> {
    let node = engine.node();
    let db = &seed.cut.db;
    let mut txn = node.begin(db, &table.name).await.map_err(failure)?;
    if columns(&txn.table().physical_schema()) != columns(&table.physical_schema()) {
        return Err(failure(format!(
            "table {} of {db} here does not have the columns of the master's",
            table.name
        )));
    }
    let partitions = files.keys().map(|(_, p)| p).collect::<BTreeSet<_>>().len() as u64;
    let bytes: u64 = files.values().flatten().map(|f| f.record.size).sum();
    let rows: u64 = files.values().flatten().map(|f| f.record.rows).sum();
    txn.seeds_table(SeedStep {
        db: db.clone(),
        cut_task: seed.cut.task_id,
        table: table.name.clone(),
        partitions,
        bytes,
        rows,
    });
    // A repair of some partitions removes their rows only (those of a partition the master
    // no longer has too); a seed, or a repair of the whole table, every row.
    let only = match repair_scope(seed, &table.name) {
        Some(TableScope::Partitions(p)) => Some(p.clone()),
        _ => None,
    };
    txn.clear(only).await.map_err(failure)?;
    for ((src, partition), files) in files {
        txn.adopt_seed(&src, &partition, files)
            .await
            .map_err(failure)?;
    }
    match txn.commit().await {
        Ok(_) => Ok(()),
        Err(crate::datanode::DataNodeError::Metadata(MetadataError::SeedDone { .. })) => Ok(()),
        Err(e) => Err(failure(e)),
    }
}
