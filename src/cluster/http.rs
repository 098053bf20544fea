//! The status pages every node serves over HTTP on its port (JSON unless noted):
//! - `/cluster/stats`: the controller group: each controller's raft state, the leader, and
//!   `health` (`green`: every controller answers and one leads; `yellow`: a leader, but some
//!   controller is down; `red`: no leader);
//! - `/datanodes`: the registered data nodes, each with whether it answers;
//! - `/raft/stats`: raft details of this controller (on a data node: of every controller);
//! - `/metrics`: Prometheus text format.
//!
//! `/metrics` answers anyone (Prometheus scrapes it without credentials); the pages that show
//! the cluster's topology answer only an admin ([`Admin`]): HTTP Basic with an admin's
//! password, accepted only over TLS (the node's port with `enableHTTPS`), checked with
//! [`crate::query::users::verify_admin`]. The pages that ask other nodes keep the answer for
//! [`FAN_OUT_TTL`], so a flood of requests costs one round of calls per interval.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::config::cluster::ClusterConfig;
use crate::controller::client::MetadataView;
use crate::controller::metadata::TxnState;
use crate::controller::service::{ControllerService, ControllerStatus, STATUS};
use crate::datanode::DataNode;
use crate::query::service::{PingReply, PING};
use crate::replication::model::{Context, Lag};
use crate::rpc::client::Peers;
use crate::rpc::server::Origin;

/// How long a status page waits for another node.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the answers of other nodes are reused by the pages.
pub const FAN_OUT_TTL: Duration = Duration::from_secs(1);

/// What the pages are built from.
#[derive(Clone)]
pub struct StatusSource {
    pub alias: String,
    pub config: ClusterConfig,
    pub peers: Arc<Peers>,
    /// Set on a controller.
    pub controller: Option<Arc<ControllerService>>,
    pub metadata: Arc<dyn Fn() -> MetadataView + Send + Sync>,
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
        .with_state(Arc::new(Pages {
            source,
            members: Cached::default(),
            datanodes: Cached::default(),
            fan_outs: AtomicU64::new(0),
        }))
}

/// The state of the pages: what they are built from and the answers of other nodes.
struct Pages {
    source: StatusSource,
    members: Cached<Vec<Member>>,
    datanodes: Cached<Vec<DataNodeStat>>,
    /// Rounds of calls to other nodes made for the pages (`/metrics` shows it).
    fan_outs: AtomicU64,
}

/// A value computed by calling other nodes, reused for [`FAN_OUT_TTL`]. Requests that come
/// while it is being computed wait for that computation instead of starting their own.
struct Cached<T> {
    slot: tokio::sync::Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Cached {
            slot: tokio::sync::Mutex::new(None),
        }
    }
}

impl<T> Cached<T> {
    async fn get<F, Fut>(&self, fan_outs: &AtomicU64, compute: F) -> Arc<T>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((at, value)) = &*slot {
            if at.elapsed() < FAN_OUT_TTL {
                return value.clone();
            }
        }
        fan_outs.fetch_add(1, Ordering::Relaxed);
        let value = Arc::new(compute().await);
        *slot = Some((Instant::now(), value.clone()));
        value
    }
}

/// An admin, proven by the request: the extractor of the pages that show the cluster.
pub struct Admin {
    /// The user (or, later, the certificate's identity).
    pub name: String,
}

/// The user a client certificate of this cluster's CA proves (`porpoise cert
/// create-client`), if the connection presented one.
fn certificate_identity(origin: Option<&Origin>) -> Option<String> {
    origin?.user.clone()
}

/// A refusal: the status code and a message saying what to do.
fn refuse(code: StatusCode, message: &str) -> Response {
    let mut response = (code, format!("{message}\n")).into_response();
    if code == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"porpoise\", charset=\"UTF-8\""),
        );
    }
    response
}

/// `user:password` of an `Authorization: Basic ...` header.
fn basic_credentials(value: &header::HeaderValue) -> Option<(String, String)> {
    use base64::Engine as _;
    let encoded = value.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

impl FromRequestParts<Arc<Pages>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        pages: &Arc<Pages>,
    ) -> Result<Self, Self::Rejection> {
        let origin = parts.extensions.get::<Origin>().cloned();
        if let Some(name) = certificate_identity(origin.as_ref()) {
            // The certificate proves who the user is; whether they may see the pages is the
            // metadata's to say.
            let metadata = (pages.source.metadata)();
            if metadata.user(&name).is_some_and(|u| u.is_admin) {
                return Ok(Admin { name });
            }
            return Err(refuse(
                StatusCode::FORBIDDEN,
                &format!("user {name} of the client certificate is not an admin"),
            ));
        }
        let tls = origin.is_some_and(|o| o.tls);
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "this page shows the cluster's topology: authenticate as an admin with HTTP \
                 Basic over https:// (the node's port serves TLS)",
            ));
        };
        if !tls {
            // The password would cross the network in clear: refuse it without checking it.
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "HTTP Basic credentials are accepted only over TLS: use https:// on this port, \
                 and change the password if it was sent over a network",
            ));
        }
        let Some((user, password)) = basic_credentials(value) else {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "malformed Authorization header: expected Basic base64(user:password)",
            ));
        };
        let metadata = (pages.source.metadata)();
        let name = user.clone();
        // Deriving the salted password costs milliseconds of CPU: not on the I/O threads.
        let admin = tokio::task::spawn_blocking(move || {
            crate::query::users::verify_admin(&metadata, &user, &password)
        })
        .await
        .unwrap_or(false);
        if !admin {
            tracing::info!(user = %name, "status page: refused credentials");
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "wrong user or password, or the user is not an admin",
            ));
        }
        Ok(Admin { name })
    }
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
    members: Arc<Vec<Member>>,
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

impl Pages {
    /// Every controller's status, at most [`FAN_OUT_TTL`] old.
    async fn members(&self) -> Arc<Vec<Member>> {
        self.members
            .get(&self.fan_outs, || self.source.members())
            .await
    }

    /// Every data node's answer to a ping, at most [`FAN_OUT_TTL`] old.
    async fn datanodes(&self) -> Arc<Vec<DataNodeStat>> {
        self.datanodes
            .get(&self.fan_outs, || datanode_stats(&self.source))
            .await
    }
}

async fn cluster_stats(_admin: Admin, State(p): State<Arc<Pages>>) -> Json<ClusterStats> {
    let s = &p.source;
    let members = p.members().await;
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
    /// The applied index of the node's metadata; shown as `metadata_version`, the page's
    /// name for it.
    #[serde(rename = "metadata_version")]
    applied_index: Option<u64>,
    error: Option<String>,
}

async fn datanode_stats(s: &StatusSource) -> Vec<DataNodeStat> {
    let metadata = (s.metadata)();
    let calls = metadata.nodes().cloned().map(|n| {
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
                applied_index: r.as_ref().ok().map(|p| p.applied_index),
                error: r.err().map(|e| e.to_string()),
            }
        }
    });
    futures::future::join_all(calls).await
}

async fn datanodes(_admin: Admin, State(p): State<Arc<Pages>>) -> Json<Arc<Vec<DataNodeStat>>> {
    Json(p.datanodes().await)
}

async fn raft_stats(_admin: Admin, State(p): State<Arc<Pages>>) -> impl IntoResponse {
    match &p.source.controller {
        Some(c) => Json(serde_json::to_value(c.status()).unwrap_or_default()),
        None => Json(
            serde_json::to_value(
                p.members()
                    .await
                    .iter()
                    .map(|m| (&m.alias, &m.status))
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default(),
        ),
    }
}

/// A per-slave, per-database gauge: name, help, value.
type LagGauge = (&'static str, &'static str, fn(&Lag) -> f64);

async fn metrics(State(p): State<Arc<Pages>>) -> impl IntoResponse {
    let s = &p.source;
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
        metadata.applied_index() as f64,
    );
    gauge(
        "porpoise_databases",
        "Databases in the catalog.",
        metadata.databases().count() as f64,
    );
    gauge(
        "porpoise_tables",
        "Tables in the catalog.",
        metadata.databases().map(|d| d.tables.len()).sum::<usize>() as f64,
    );
    gauge(
        "porpoise_datanodes",
        "Registered data nodes.",
        metadata.nodes().count() as f64,
    );
    gauge(
        "porpoise_active_transactions",
        &format!(
            "Transactions begun and not yet committed or aborted (each data node begins up to {} ahead of use).",
            crate::datanode::TIDS_AHEAD
        ),
        metadata
            .txns()
            .filter(|(_, t)| t.state == TxnState::Active)
            .count() as f64,
    );
    gauge(
        "porpoise_unpublished_transactions",
        "Committed transactions not yet ended (some participant has not published, or the end is not yet recorded).",
        metadata.txns().filter(|(_, t)| t.state == TxnState::Committed).count() as f64,
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
            (
                "porpoise_replication_seed_bytes_fetched_total",
                "Bytes of seeds' data files fetched from the master (not counting those found in the seed cache).",
                &received.seed_fetched,
            ),
            (
                "porpoise_replication_seed_bytes_sent_total",
                "Bytes of seeds' data files sent to slaves (master).",
                &received.seed_sent,
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
    let _ = writeln!(
        out,
        "# HELP porpoise_http_fan_outs_total Rounds of calls to other nodes made for the status pages (at most one per page per {}s).\n# TYPE porpoise_http_fan_outs_total counter\nporpoise_http_fan_outs_total{{node=\"{}\"}} {}",
        FAN_OUT_TTL.as_secs(),
        s.alias,
        p.fan_outs.load(Ordering::Relaxed)
    );
    // Replication lag per slave and database (a master's).
    let lag = metadata.replication().lag(&Context {
        now_ns: crate::controller::metadata::now_ns(),
        index: metadata.applied_index(),
        ..metadata.replication_context()
    });
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
