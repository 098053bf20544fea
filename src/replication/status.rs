//! Replication as the status functions show it: the rows of `getMasterReplicationStatus`,
//! `getSlaveReplicationStatus`, `getRecentSlaveReplicationInfo`,
//! `getClusterReplicationMetrics`, `getClusterReplicationLag`,
//! `getSlaveReplicationQueueStatus`, `getSlaveReplicationExecutionStatus` and
//! `getDatabaseClusterReplicationStatus`, read from the controller's metadata (and a data
//! node's workers). Who may call them, and on which cluster, is checked by the caller.

use porpoise_functions::get_cluster_replication_lag::Lag;
use porpoise_functions::get_cluster_replication_metrics::Metrics;
use porpoise_functions::get_cluster_replication_seed_status::Seed;
use porpoise_functions::get_database_cluster_replication_status::DatabaseReplication;
use porpoise_functions::get_master_replication_status::MasterTask;
use porpoise_functions::get_recent_slave_replication_info::SlaveInfo;
use porpoise_functions::get_slave_replication_execution_status::Execution;
use porpoise_functions::get_slave_replication_queue_status::Queue;
use porpoise_functions::get_slave_replication_status::SlaveTask;

use super::model::{Context, Replication, ReplicationRole, ReplicationState, SeedCut, TaskState};
use super::slave::executions::Replica;
use crate::controller::client::MetadataView;

/// `host:port` as (host, port).
fn split_addr(addr: &str) -> (String, i32) {
    addr.rsplit_once(':')
        .map_or((String::new(), 0), |(ip, port)| {
            (ip.to_string(), port.parse().unwrap_or(0))
        })
}

/// `getDatabaseClusterReplicationStatus()`.
pub fn databases(metadata: &MetadataView) -> Vec<DatabaseReplication> {
    metadata
        .databases()
        .map(|d| DatabaseReplication {
            db_name: d.def.name.clone(),
            enabled: d.replication.is_some(),
            execution_set: d
                .replication
                .as_ref()
                .map_or(0, |r| i32::from(r.execution_set)),
        })
        .collect()
}

/// `getMasterReplicationStatus()`.
pub fn master_tasks(metadata: &MetadataView) -> Vec<MasterTask> {
    metadata
        .replication()
        .master
        .tasks
        .values()
        .map(|t| {
            let (ip, port) = t
                .src
                .and_then(|id| metadata.node(id))
                .map_or((String::new(), 0), |n| split_addr(&n.addr));
            MasterTask {
                task_id: t.task_id as i64,
                tid: t.tid as i64,
                group_id: t.group_id as i64,
                operation_type: t.op.name().to_string(),
                submit_time_ns: t.submit_ns,
                db_name: t.db.clone(),
                table_name: t.table.clone(),
                src_ip: ip,
                src_port: port,
                is_truncated: t.truncated,
            }
        })
        .collect()
}

/// `getSlaveReplicationStatus()`.
pub fn slave_tasks(metadata: &MetadataView) -> Vec<SlaveTask> {
    let s = &metadata.replication().slave;
    s.tasks
        .values()
        .map(|t| {
            let (ip, port) = split_addr(&t.src_addr);
            SlaveTask {
                task_id: t.task.task_id as i64,
                master_tid: t.task.tid as i64,
                group_id: t.task.group_id as i64,
                execution_set: i32::from(t.task.execution_set),
                queue_id: t.queue_id as i32,
                operation_type: t.task.op.name().to_string(),
                create_time_ns: t.create_ns,
                db_name: t.task.db.clone(),
                table_name: t.task.table.clone(),
                src_ip: ip,
                src_port: port,
                finish_time_ns: (t.state == TaskState::Finished).then_some(t.finish_ns),
                execution_node: t.execution_node.clone(),
                state: t.state.name().to_string(),
                details: t.details.clone(),
                master_commit_time_ns: t.task.submit_ns,
            }
        })
        .collect()
}

/// `getClusterReplicationSeedStatus()` on a slave: each database's last seed.
pub fn slave_seeds(metadata: &MetadataView) -> Vec<Seed> {
    let r = metadata.replication();
    let i = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    r.slave
        .seeds
        .iter()
        .map(|(db, s)| Seed {
            slave_cluster_id: r.cluster_id.clone(),
            db_name: db.clone(),
            cut_task_id: i(s.cut.task_id),
            cut_time_ns: s.cut.cut_ns,
            state: s.state.name().to_string(),
            tables_done: Some(s.tables_done.len() as i64),
            tables_total: Replication::seed_tables(s).len() as i64,
            kind: kind(&s.cut).into(),
            partitions_done: Some(i(s.partitions_done)),
            partitions_total: s.partitions_total.map(i),
            bytes_done: Some(i(s.bytes_done)),
            bytes_total: s.bytes_total.map(i),
            rows_done: Some(i(s.rows_done)),
            finish_time_ns: (s.finished_ns != 0).then_some(s.finished_ns),
            attempts: Some(i64::from(s.attempts)),
            error: (!s.error.is_empty()).then(|| s.error.clone()),
        })
        .chain(r.slave.repairs.iter().map(|(db, repair)| Seed {
            slave_cluster_id: r.cluster_id.clone(),
            db_name: db.clone(),
            state: "REQUESTED".into(),
            tables_total: repair.tables.len() as i64,
            kind: "REPAIR".into(),
            ..Seed::default()
        }))
        .collect()
}

/// `SEED`, or `REPAIR` for a cut a slave asked for.
fn kind(cut: &SeedCut) -> &'static str {
    match cut.repair {
        None => "SEED",
        Some(_) => "REPAIR",
    }
}

/// `getClusterReplicationSeedStatus()` on a master: the cuts slaves have still to install.
pub fn pending_cuts(metadata: &MetadataView) -> Vec<Seed> {
    metadata
        .replication()
        .cuts
        .iter()
        .flat_map(|(slave, cuts)| {
            cuts.values().map(move |cut| Seed {
                slave_cluster_id: slave.clone(),
                db_name: cut.db.clone(),
                cut_task_id: i64::try_from(cut.task_id).unwrap_or(i64::MAX),
                cut_time_ns: cut.cut_ns,
                state: "PENDING".into(),
                tables_total: cut
                    .repair
                    .as_ref()
                    .map_or(cut.catalog.tables.len(), |r| r.tables.len())
                    as i64,
                kind: kind(cut).into(),
                ..Seed::default()
            })
        })
        .collect()
}

/// `getRecentSlaveReplicationInfo()`: the attached slaves and those refused, by cluster id.
/// A slave that is both (attached, its latest pull refused) is listed once, as refused.
pub fn slaves(metadata: &MetadataView) -> Vec<SlaveInfo> {
    let r = metadata.replication();
    let ids: std::collections::BTreeSet<&String> =
        r.slaves.keys().chain(r.refused.keys()).collect();
    ids.into_iter()
        .filter_map(|id| {
            let (s, status, error) = match (r.refused.get(id), r.slaves.get(id)) {
                (Some(refused), _) => (&refused.progress, "REFUSED", Some(refused.reason.clone())),
                (None, Some(s)) => (s, "ATTACHED", None),
                (None, None) => return None,
            };
            Some(SlaveInfo {
                cluster_id: id.clone(),
                connected_controller: s.connected.clone(),
                all_controllers: s.controllers.join(","),
                last_finished_task_id: s.finished as i64,
                last_pull_time_ns: s.last_pull_ns,
                tasks_behind: r.master.last_task_id.saturating_sub(s.finished) as i64,
                status: status.to_string(),
                error,
            })
        })
        .collect()
}

/// `getClusterReplicationMetrics(secs)`: over the last `secs` seconds, or since the first
/// task kept.
pub fn metrics(metadata: &MetadataView, secs: Option<i64>) -> Metrics {
    let s = &metadata.replication().slave;
    let now = metadata.clock_ns();
    let since = secs.map_or(i64::MIN, |secs| now - secs * 1_000_000_000);
    let finished: Vec<_> = s
        .tasks
        .values()
        .filter(|t| t.state == TaskState::Finished && t.finish_ns >= since)
        .collect();
    let costs: Vec<i64> = finished.iter().map(|t| t.finish_ns - t.create_ns).collect();
    let groups: std::collections::BTreeSet<(u32, u64)> = finished
        .iter()
        .map(|t| (t.queue_id, t.task.group_id))
        .collect();
    let n = finished.len() as i64;
    let window_secs = match secs {
        Some(secs) => secs as f64,
        None => finished
            .iter()
            .map(|t| t.create_ns)
            .min()
            .map_or(1.0, |first| ((now - first) as f64 / 1e9).max(1.0)),
    };
    Metrics {
        status: s.state.name().to_string(),
        finished_tasks: n,
        unfinished_tasks: s
            .tasks
            .range(s.open_from..)
            .filter(|(_, t)| t.state != TaskState::Finished)
            .count() as i64,
        finished_tasks_per_sec: n as f64 / window_secs,
        max_cost_ns: costs.iter().copied().max().unwrap_or(0),
        avg_cost_ns: if n > 0 {
            costs.iter().sum::<i64>() / n
        } else {
            0
        },
        average_group_size: if groups.is_empty() {
            0.0
        } else {
            n as f64 / groups.len() as f64
        },
        pull_error: s.pull_error.clone(),
    }
}

/// `getClusterReplicationLag()` at `now_ns`, on a cluster of `role`.
pub fn lag(metadata: &MetadataView, now_ns: i64, role: ReplicationRole) -> Vec<Lag> {
    let ctx = Context {
        now_ns,
        ..metadata.replication_context()
    };
    let r = metadata.replication();
    let rows = match role {
        ReplicationRole::Slave => r.slave_lag(&ctx),
        ReplicationRole::Master => r.lag(&ctx),
    };
    rows.into_iter()
        .map(|l| Lag {
            slave: l.slave,
            connected_controller: l.connected,
            db_name: l.db,
            tasks_behind: l.tasks_behind as i64,
            seconds_behind: l.seconds_behind,
            replicated_task_id: l.replicated.as_ref().map(|p| p.task_id as i64),
            replicated_time_ns: l.replicated.map(|p| p.master_ns),
        })
        .collect()
}

/// `getSlaveReplicationExecutionStatus()`: the tasks on this data node's workers.
pub fn executions(replica: &Replica) -> Vec<Execution> {
    replica
        .executions()
        .into_iter()
        .map(|e| Execution {
            execution_set: i32::from(e.execution_set),
            worker: e.worker as i32,
            task_id: e.task_id as i64,
            state: e.state.as_str().to_string(),
        })
        .collect()
}

/// `getSlaveReplicationQueueStatus()` at `now`.
pub fn queues(metadata: &MetadataView, now: i64) -> Vec<Queue> {
    let s = &metadata.replication().slave;
    let mut nodes: Vec<_> = metadata.nodes().collect();
    let per_set = metadata.replication().slave_queues(nodes.len());
    nodes.sort_by_key(|n| n.id);
    (0..2 * per_set)
        .map(|queue_id| {
            let unfinished: Vec<_> = s
                .tasks
                .range(s.open_from..)
                .map(|(_, t)| t)
                .filter(|t| t.queue_id == queue_id && t.state != TaskState::Finished)
                .collect();
            let group = unfinished.first().map(|t| t.task.group_id);
            let current: Vec<_> = unfinished
                .iter()
                .filter(|t| Some(t.task.group_id) == group)
                .collect();
            let failed = current.iter().any(|t| t.state == TaskState::Failed);
            let status = match (unfinished.is_empty(), failed, s.state) {
                (true, _, _) => "FINISHED",
                (false, true, ReplicationState::Stopped) => "STOPPED",
                (false, true, _) => "FAILED",
                (false, false, _) => "EXECUTING",
            };
            Queue {
                execution_set: (queue_id / per_set) as i32,
                queue_id: queue_id as i32,
                unfinished_tasks: unfinished.len() as i64,
                execution_group_id: group.map_or(-1, |g| g as i64),
                execution_node: if nodes.is_empty() {
                    String::new()
                } else {
                    nodes[queue_id as usize % nodes.len()].alias.clone()
                },
                execution_time_ns: current.iter().map(|t| now - t.create_ns).max().unwrap_or(0),
                status: status.to_string(),
            }
        })
        .collect()
}
