//! A cluster of processes described by a DolphinDB-style directory (`controller.cfg`,
//! `cluster.nodes`, `cluster.cfg`; see [`crate::config::cluster`]):
//! - [`controller`]: `porpoise controller`, one member of the controller raft group;
//! - [`datanode`]: `porpoise datanode`, a data node serving pgwire;
//! - [`up`]: `porpoise up`, every node of a directory as child processes of one command;
//! - [`http`]: the status pages every node serves on its port.
//!
//! Each node serves pgwire (data nodes), Arrow Flight and HTTP on the one port `cluster.nodes`
//! gives it, and keeps its files under `<home>/<alias>/`.

pub mod controller;
pub mod datanode;
pub mod http;
pub mod playground;
pub mod up;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::cluster::ReplicationMode;
use crate::config::cluster::{ClusterConfig, NodeEntry, NodeRole, TlsSettings};
use crate::config::ConfigError;
use crate::controller::error::ControllerError;
use crate::datanode::DataNodeError;
use crate::query::QueryError;
use crate::rpc::client::Peers;
use crate::rpc::identity::{NodeIdentity, TlsError};
use crate::rpc::tls::{client_config, ServerTls, ServerTrust, TrustFile};

/// Why a node could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("controller: {0}")]
    Controller(#[from] ControllerError),
    #[error("data node: {0}")]
    DataNode(#[from] DataNodeError),
    #[error("query engine: {0}")]
    Query(#[from] QueryError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{dir}/cluster.nodes has no {role} named {alias}")]
    UnknownAlias {
        dir: PathBuf,
        alias: String,
        role: &'static str,
    },
    #[error("cannot start node {alias}: {source}")]
    Spawn {
        alias: String,
        #[source]
        source: std::io::Error,
    },
    #[error("node {alias} exited: {status}")]
    Exited { alias: String, status: String },
    #[error("cannot create the admin user: {0}")]
    Bootstrap(String),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("a slave cluster needs clusterReplicationSSLCAFile in {0}: the master cluster's CA certificate (its ca.crt), to know the master's nodes (or insecure=true, to trust anyone)")]
    NoMasterCa(PathBuf),
    #[error(
        "refusing to serve on {addr}: user admin still has the default password 123456, and \
         anyone who can reach this address could log in as admin. {remedy}"
    )]
    DefaultPassword { addr: String, remedy: String },
}

/// Whether a node listening on `addr` must refuse to serve (`protectedMode`): it is reachable
/// from other machines and `metadata` says admin still has the default password.
pub fn refuses_default_password(
    protected: bool,
    addr: SocketAddr,
    metadata: &crate::controller::client::MetadataView,
) -> bool {
    protected
        && !addr.ip().is_loopback()
        && crate::query::users::admin_has_default_password(metadata)
}

/// What the operator of a cluster whose admin has the default password does.
pub const CLUSTER_REMEDY: &str = "Set protectedMode=false in controller.cfg and cluster.cfg, \
     start the cluster, run ALTER USER admin PASSWORD '<new password>' through a data node, \
     then remove protectedMode=false and restart; or keep protectedMode=false to accept the \
     risk.";

/// Options every node process takes.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub config: ClusterConfig,
    pub alias: String,
    /// Files go to `<home>/<alias>/`.
    pub home: PathBuf,
    /// `--insecure`: as `insecure=true` in the node's file.
    pub insecure: bool,
}

/// How a node proves who it is and knows who calls it.
pub struct Security {
    pub identity: Arc<NodeIdentity>,
    /// The server side of its port.
    pub tls: Arc<ServerTls>,
    /// Its calls to the nodes of its own cluster.
    pub peers: Arc<Peers>,
    /// Plain text between nodes, every caller taken (`insecure`).
    pub insecure: bool,
}

impl NodeOptions {
    /// This node's line of `cluster.nodes`, checked to have `role`.
    pub fn entry(&self, role: NodeRole) -> Result<&NodeEntry, NodeError> {
        self.config
            .nodes
            .iter()
            .find(|n| n.alias == self.alias && n.role == role)
            .ok_or_else(|| NodeError::UnknownAlias {
                dir: self.config.dir.clone(),
                alias: self.alias.clone(),
                role: match role {
                    NodeRole::Controller => "controller",
                    NodeRole::DataNode => "datanode",
                },
            })
    }

    /// The node's own directory.
    pub fn dir(&self) -> PathBuf {
        self.home.join(&self.alias)
    }

    /// The node's certificate directory, `<home>/<alias>/certs`.
    pub fn certs_dir(&self) -> PathBuf {
        self.dir().join("certs")
    }

    /// The node's identity and TLS: its certificate in [`Self::certs_dir`] (made on the first
    /// start, signed by the home's CA in `<home>/ca`, for the names the node is reached by),
    /// the server side of its port (admitting slaves of `clusterReplicationSlaveCAFile`), and
    /// mutual TLS to the other nodes (plain with `insecure`).
    pub fn security(
        &self,
        settings: &TlsSettings,
        entry: &NodeEntry,
    ) -> Result<Security, NodeError> {
        let mut hosts = vec![entry.host.clone()];
        if let Some(public) = self.config.public_addrs().get(&addr_of(entry)) {
            if let Some((host, _)) = public.rsplit_once(':') {
                hosts.push(host.trim_matches(['[', ']']).to_string());
            }
        }
        let identity = Arc::new(NodeIdentity::load_or_create(
            &self.certs_dir(),
            &self.home.join("ca"),
            &self.alias,
            &hosts,
        )?);
        let slaves = settings
            .slave_ca_file
            .as_ref()
            // Relative to the cluster directory (an absolute path replaces it).
            .map(|p| TrustFile::new(self.config.dir.join(p)));
        let tls = ServerTls::new(&identity, slaves)?;
        let insecure = self.insecure || settings.insecure;
        let peers = if insecure {
            tracing::warn!(
                alias = %self.alias,
                "INSECURE: calls between nodes are plain text and taken from anyone who reaches \
                 this node's port; use only on a trusted network"
            );
            Arc::new(Peers::new())
        } else {
            Arc::new(Peers::with_tls(client_config(
                &identity,
                ServerTrust::Cluster,
            )?))
        };
        Ok(Security {
            identity,
            tls,
            peers,
            insecure,
        })
    }

    /// The peers a slave node reaches the master's nodes through: mutual TLS, checking them
    /// against the master's CA (`clusterReplicationSSLCAFile`); plain when insecure.
    pub fn master_peers(
        &self,
        settings: &TlsSettings,
        security: &Security,
    ) -> Result<Arc<Peers>, NodeError> {
        if security.insecure {
            return Ok(security.peers.clone());
        }
        let Some(ca) = settings.replication_ca_file.as_ref() else {
            if self.config.datanode.replication_mode == Some(ReplicationMode::Slave) {
                return Err(NodeError::NoMasterCa(self.config.dir.clone()));
            }
            return Ok(security.peers.clone());
        };
        let file = TrustFile::new(self.config.dir.join(ca));
        let config = client_config(&security.identity, ServerTrust::File(file))?;
        Ok(Arc::new(Peers::with_tls(config)))
    }
}

/// `host:port` of a node.
pub fn addr_of(n: &NodeEntry) -> String {
    format!("{}:{}", n.host, n.port)
}

/// The controllers of a cluster: raft id (1-based position in `cluster.nodes`), alias,
/// address.
pub fn controllers(config: &ClusterConfig) -> Vec<(u64, String, String)> {
    config
        .nodes
        .iter()
        .filter(|n| n.role == NodeRole::Controller)
        .enumerate()
        .map(|(i, n)| (i as u64 + 1, n.alias.clone(), addr_of(n)))
        .collect()
}

/// Binds a node's port.
pub async fn bind(entry: &NodeEntry) -> Result<tokio::net::TcpListener, NodeError> {
    let addr = addr_of(entry);
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(&addr)
        .await
        .map_err(|source| NodeError::Listen {
            addr: addr.clone(),
            source,
        })?
        .collect();
    let mut last = None;
    for a in resolved {
        match tokio::net::TcpListener::bind(a).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(NodeError::Listen {
        addr,
        source: last.unwrap_or_else(|| std::io::Error::other("no address")),
    })
}
