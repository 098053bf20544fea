//! `checkClusterReplicationConsistency('dfs://db'[, 'table'])` on a slave: compares the
//! database with the master's at the same point, partition by partition, online.
//!
//! The point is the database's read point on the slave ([`crate::replication::model::ReadPoint`]):
//! the slave's state there is the master's right after task `task_id`, which the master shows
//! at its own log index `master_index`. Every data node of each side digests the partitions it
//! holds at its side's index ([`super::digest`]), and the digests are compared. The master
//! answers only while no DDL of the database is queued after the point (a changed table could
//! not be compared); the check then waits for the slave to apply it and takes the new point.
//!
//! [`repair_scope`] turns a check, and what skipped tasks left diverged, into what
//! `repairClusterReplication` asks the master to replace.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::digest::{merge, Digest, DigestRequest, Digests, DIGEST};
use super::model::{merge_scope, ReadPoint, Scope, TableScope};
use crate::controller::error::MetadataError;
use crate::datanode::DataNode;
use crate::replication::protocol::is_pending_error;
use crate::rpc::{RemoteError, RpcError};
use crate::sqlstate::{ErrorCode, SqlState};

/// How long a node may take to digest its share of a table.
const DIGEST_TIMEOUT: Duration = Duration::from_secs(600);

/// How long the check waits for a point the master can answer at.
const POINT_DEADLINE: Duration = Duration::from_secs(60);

/// One partition's comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compared {
    pub table: String,
    pub partition: String,
    pub master: Option<Digest>,
    pub slave: Option<Digest>,
}

impl Compared {
    /// `MATCH`, `DIFFER`, `MISSING_ON_SLAVE` or `EXTRA_ON_SLAVE`.
    pub fn status(&self) -> &'static str {
        match (&self.master, &self.slave) {
            (Some(m), Some(s)) if m == s => "MATCH",
            (Some(_), None) => "MISSING_ON_SLAVE",
            (None, Some(_)) => "EXTRA_ON_SLAVE",
            _ => "DIFFER",
        }
    }
}

/// The comparison of `db` (or of its table `table`) at one read point.
pub async fn check(
    node: &Arc<DataNode>,
    db: &str,
    table: Option<&str>,
) -> Result<(ReadPoint, Vec<Compared>), RemoteError> {
    let deadline = tokio::time::Instant::now() + POINT_DEADLINE;
    loop {
        match check_once(node, db, table).await {
            Err(e) if is_pending_error(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

async fn check_once(
    node: &Arc<DataNode>,
    db: &str,
    table: Option<&str>,
) -> Result<(ReadPoint, Vec<Compared>), RemoteError> {
    let metadata = node.controller().metadata();
    let r = metadata.replication();
    let not_ready = |why: String| RemoteError::new(SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE, why);
    if r.seeding(db) {
        return Err(RemoteError::from_error(&MetadataError::Seeding(
            db.to_string(),
        )));
    }
    let Some(point) = r.slave.read_points.get(db).cloned() else {
        return Err(not_ready(format!(
            "{db} has no read point on this slave yet: it is not replicated here, or no task of it was applied"
        )));
    };
    if point.master_index == 0 {
        return Err(not_ready(format!(
            "the read point of {db} (task {}) came from a master that did not record where its state is; check again after its next task",
            point.task_id
        )));
    }
    if r.slave.master_nodes.is_empty() {
        return Err(not_ready(
            "this slave does not know the master's data nodes yet".into(),
        ));
    }
    let Some(database) = metadata.database(db) else {
        return Err(RemoteError::from_error(&MetadataError::DatabaseNotFound(
            db.to_string(),
        )));
    };
    let tables: Vec<String> = match table {
        Some(t) if database.tables.contains_key(t) => vec![t.to_string()],
        Some(t) => {
            return Err(RemoteError::from_error(&MetadataError::TableNotFound {
                db: db.to_string(),
                table: t.to_string(),
            }))
        }
        None => database.tables.keys().cloned().collect(),
    };
    let own: Vec<String> = metadata.nodes().map(|n| n.addr.clone()).collect();
    let mut out = Vec::new();
    for t in tables {
        let slave_req = DigestRequest {
            db: db.to_string(),
            table: t.clone(),
            at: point.index,
            after_task: None,
        };
        let master_req = DigestRequest {
            at: point.master_index,
            after_task: Some(point.task_id),
            ..slave_req.clone()
        };
        let (slave, master) = tokio::join!(
            digests(node.peers(), &own, &slave_req),
            digests(node.master_peers(), &r.slave.master_nodes, &master_req)
        );
        let (slave, master) = (slave?, master?);
        let partitions: BTreeSet<&String> = master.keys().chain(slave.keys()).collect();
        for p in partitions {
            let present = |d: Option<&Digest>| d.copied().filter(|d| d.rows > 0);
            out.push(Compared {
                table: t.clone(),
                partition: p.clone(),
                master: present(master.get(p)),
                slave: present(slave.get(p)),
            });
        }
    }
    out.retain(|c| c.master.is_some() || c.slave.is_some());
    Ok((point, out))
}

/// The digests of a table's partitions over the data nodes at `addrs`.
async fn digests(
    peers: &crate::rpc::client::Peers,
    addrs: &[String],
    req: &DigestRequest,
) -> Result<Digests, RemoteError> {
    let asks = addrs.iter().map(|addr| async move {
        let r: Result<Digests, RpcError> = peers.call(addr, DIGEST, req, DIGEST_TIMEOUT).await;
        r.map_err(|e| match e {
            RpcError::Remote(r) => r,
            other => RemoteError::new(other.sqlstate(), format!("{addr}: {other}")),
        })
    });
    let mut all = Digests::new();
    for answer in futures::future::join_all(asks).await {
        merge(&mut all, answer?);
    }
    Ok(all)
}

/// One table or partition a repair replaces, and why (`REQUESTED`, `DIVERGED`, or the check's
/// status); `partition` `None` is the whole table.
pub type RepairItem = (String, Option<String>, String);

/// What a repair of `db` on this slave replaces: the `requested` tables (`None` partition:
/// the whole table) and partitions, or else every partition the check finds not matching
/// and everything skipped tasks left diverged. Names must be tables of `db` here (42P01).
pub async fn repair_scope(
    node: &Arc<DataNode>,
    db: &str,
    requested: Option<Vec<(String, Option<String>)>>,
) -> Result<(Scope, Vec<RepairItem>), RemoteError> {
    let metadata = node.controller().metadata();
    let database = metadata
        .database(db)
        .filter(|_| metadata.replication().slave.databases.contains(db))
        .ok_or_else(|| RemoteError::from_error(&MetadataError::NotReplicated(db.to_string())))?;
    let mut items: Vec<RepairItem> = Vec::new();
    match requested {
        Some(requested) => {
            for (table, partition) in requested {
                if !database.tables.contains_key(&table) {
                    return Err(RemoteError::from_error(&MetadataError::TableNotFound {
                        db: db.to_string(),
                        table,
                    }));
                }
                items.push((table, partition, "REQUESTED".into()));
            }
        }
        None => {
            let diverged = metadata
                .replication()
                .slave
                .diverged
                .get(db)
                .cloned()
                .unwrap_or_default();
            for (table, scope) in &diverged {
                match scope {
                    TableScope::Whole => items.push((table.clone(), None, "DIVERGED".into())),
                    TableScope::Partitions(p) => items.extend(
                        p.iter()
                            .map(|p| (table.clone(), Some(p.clone()), "DIVERGED".into())),
                    ),
                }
            }
            let (_, compared) = check(node, db, None).await?;
            for c in compared {
                let status = c.status();
                let listed = diverged
                    .get(&c.table)
                    .is_some_and(|scope| scope.covers(&c.partition));
                if status != "MATCH" && !listed {
                    items.push((c.table, Some(c.partition), status.to_string()));
                }
            }
        }
    }
    let mut scope = Scope::new();
    for (table, partition, _) in &items {
        let more = match partition {
            None => TableScope::Whole,
            Some(p) => TableScope::Partitions([p.clone()].into()),
        };
        merge_scope(&mut scope, &[(table.clone(), more)].into());
    }
    Ok((scope, items))
}
