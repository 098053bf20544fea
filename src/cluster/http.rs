//! The status pages every node serves over HTTP on its port (JSON unless noted):
//! - `/cluster/stats`: the controller group: each controller's raft state, the leader, and
//!   `health` (`green`: every controller answers and one leads; `yellow`: a leader, but some
//!   controller is down; `red`: no leader);
//! - `/datanodes`: the registered data nodes, each with whether it answers;
//! - `/raft/stats`: raft details of this controller (on a data node: of every controller);
//! - `/metrics`: Prometheus text format.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::config::cluster::ClusterConfig;
use crate::controller::metadata::{Metadata, TxnState};
use crate::controller::replication::Lag;
use crate::controller::service::{ControllerService, ControllerStatus, STATUS};
use crate::datanode::DataNode;
use crate::query::service::{PingReply, PING};
use crate::rpc::client::Peers;

/// How long a status page waits for another node.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the pages are built from.
#[derive(Clone)]
pub struct StatusSource {
    pub alias: String,
    pub config: ClusterConfig,
    pub peers: Arc<Peers>,
    /// Set on a controller.
    pub controller: Option<Arc<ControllerService>>,
    pub metadata: Arc<dyn Fn() -> Arc<Metadata> + Send + Sync>,
    /// Set on a data node.
    pub datanode: Option<Arc<DataNode>>,
}

/// The HTTP routes of a node.
pub fn router(source: StatusSource) -> Router {
    Router::new()
        .route("/cluster/stats", get(cluster_stats))
        .route("/datanodes", get(datanodes))
        .route("/raft/stats", get(raft_stats))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(source))
}

/// One controller as `/cluster/stats` reports it.
#[derive(Serialize)]
struct Member {
    alias: String,
    addr: String,
    reachable: bool,
    status: Option<ControllerStatus>,
    error: Option<String>,
}

#[derive(Serialize)]
struct ClusterStats {
    node: String,
    leader: Option<String>,
    leader_addr: Option<String>,
    health: &'static str,
    members: Vec<Member>,
}

impl StatusSource {
    /// Every controller's status (this one's directly, the others' over the network).
    async fn members(&self) -> Vec<Member> {
        let calls = super::controllers(&self.config)
            .into_iter()
            .map(|(_, alias, addr)| {
                let own = self
                    .controller
                    .as_ref()
                    .filter(|_| alias == self.alias)
                    .map(|c| c.status());
                let peers = self.peers.clone();
                async move {
                    let answer = match own {
                        Some(s) => Ok(s),
                        None => {
                            peers
                                .call::<_, ControllerStatus>(&addr, STATUS, &(), PROBE_TIMEOUT)
                                .await
                        }
                    };
                    match answer {
                        Ok(s) => Member {
                            alias,
                            addr,
                            reachable: true,
                            status: Some(s),
                            error: None,
                        },
                        Err(e) => Member {
                            alias,
                            addr,
                            reachable: false,
                            status: None,
                            error: Some(e.to_string()),
                        },
                    }
                }
            });
        futures::future::join_all(calls).await
    }
}

async fn cluster_stats(State(s): State<Arc<StatusSource>>) -> Json<ClusterStats> {
    let members = s.members().await;
    let leader = members
        .iter()
        .filter_map(|m| m.status.as_ref())
        .find(|st| st.state == "Leader");
    let (leader_alias, leader_addr) = match leader {
        Some(l) => (Some(l.alias.clone()), Some(l.addr.clone())),
        None => (None, None),
    };
    let health = match (&leader_alias, members.iter().all(|m| m.reachable)) {
        (None, _) => "red",
        (Some(_), false) => "yellow",
        (Some(_), true) => "green",
    };
    Json(ClusterStats {
        node: s.alias.clone(),
        leader: leader_alias,
        leader_addr,
        health,
        members,
    })
}

#[derive(Serialize)]
struct DataNodeStat {
    alias: String,
    id: u64,
    addr: String,
    reachable: bool,
    metadata_version: Option<u64>,
    error: Option<String>,
}

async fn datanode_stats(s: &StatusSource) -> Vec<DataNodeStat> {
    let metadata = (s.metadata)();
    let calls = metadata.nodes.values().cloned().map(|n| {
        let peers = s.peers.clone();
        async move {
            let r = peers
                .call::<_, PingReply>(&n.addr, PING, &(), PROBE_TIMEOUT)
                .await;
            DataNodeStat {
                alias: n.alias,
                id: n.id,
                addr: n.addr,
                reachable: r.is_ok(),
                metadata_version: r.as_ref().ok().map(|p| p.metadata_version),
                error: r.err().map(|e| e.to_string()),
            }
        }
    });
    futures::future::join_all(calls).await
}

async fn datanodes(State(s): State<Arc<StatusSource>>) -> Json<Vec<DataNodeStat>> {
    Json(datanode_stats(&s).await)
}

async fn raft_stats(State(s): State<Arc<StatusSource>>) -> impl IntoResponse {
    match &s.controller {
        Some(c) => Json(serde_json::to_value(c.status()).unwrap_or_default()),
        None => Json(
            serde_json::to_value(
                s.members()
                    .await
                    .into_iter()
                    .map(|m| (m.alias, m.status))
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default(),
        ),
    }
}

/// A per-slave, per-database gauge: name, help, value.
type LagGauge = (&'static str, &'static str, fn(&Lag) -> f64);

async fn metrics(State(s): State<Arc<StatusSource>>) -> impl IntoResponse {
    let metadata = (s.metadata)();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{node=\"{}\"}} {value}",
            s.alias
        );
    };
    gauge(
        "porpoise_metadata_version",
        "Raft log index of the newest metadata this node holds.",
        metadata.version as f64,
    );
    gauge(
        "porpoise_databases",
        "Databases in the catalog.",
        metadata.databases.len() as f64,
    );
    gauge(
        "porpoise_tables",
        "Tables in the catalog.",
        metadata
            .databases
            .values()
            .map(|d| d.tables.len())
            .sum::<usize>() as f64,
    );
    gauge(
        "porpoise_datanodes",
        "Registered data nodes.",
        metadata.nodes.len() as f64,
    );
    gauge(
        "porpoise_active_transactions",
        &format!(
            "Transactions begun and not yet committed or aborted (each data node begins up to {} ahead of use).",
            crate::datanode::TIDS_AHEAD
        ),
        metadata
            .txns
            .values()
            .filter(|t| t.state == TxnState::Active)
            .count() as f64,
    );
    gauge(
        "porpoise_unpublished_transactions",
        "Committed transactions not yet ended (some participant has not published, or the end is not yet recorded).",
        metadata.txns.values().filter(|t| t.state == TxnState::Committed).count() as f64,
    );
    if let Some(c) = &s.controller {
        let st = c.status();
        gauge("porpoise_raft_term", "Current raft term.", st.term as f64);
        gauge(
            "porpoise_raft_is_leader",
            "1 if this controller leads the group.",
            f64::from(u8::from(st.state == "Leader")),
        );
        gauge(
            "porpoise_raft_last_log_index",
            "Last raft log index.",
            st.last_log_index.unwrap_or(0) as f64,
        );
        gauge(
            "porpoise_raft_last_applied",
            "Last applied raft log index.",
            st.last_applied.unwrap_or(0) as f64,
        );
    }
    if let Some(node) = &s.datanode {
        gauge(
            "porpoise_datanode_id",
            "This data node's id.",
            node.id as f64,
        );
        let received = &node.received;
        let counters = [
            (
                "porpoise_replication_files_received_total",
                "Data files of replicated APPENDs taken from the master as they are.",
                &received.files,
            ),
            (
                "porpoise_replication_file_bytes_received_total",
                "Bytes of those files.",
                &received.bytes,
            ),
            (
                "porpoise_replication_rows_received_total",
                "Rows of replicated APPENDs fetched from the master's task data instead.",
                &received.rows,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{node=\"{}\"}} {}",
                s.alias,
                value.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
    }
    // Replication lag per slave and database (a master's).
    let lag = metadata.replication_lag(crate::controller::metadata::now_ns());
    let per_slave: [LagGauge; 2] = [
        (
            "porpoise_replication_tasks_behind",
            "Queued tasks a slave has not finished.",
            |l| l.tasks_behind as f64,
        ),
        (
            "porpoise_replication_seconds_behind",
            "Age of the oldest task a slave has not finished.",
            |l| l.seconds_behind,
        ),
    ];
    for (name, help, value) in per_slave.iter().filter(|_| !lag.is_empty()) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for l in &lag {
            let _ = writeln!(
                out,
                "{name}{{node=\"{}\",slave=\"{}\",db=\"{}\"}} {}",
                s.alias,
                l.slave,
                l.db,
                value(l)
            );
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
