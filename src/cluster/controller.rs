//! `porpoise controller`: one member of the controller raft group. It serves raft messages,
//! controller calls and the status pages on its port, and while it leads it keeps the metadata
//! in line with the configuration: the data nodes of `cluster.nodes` are registered
//! ([`Command::SyncNodes`]) and the `admin` user exists.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;

use super::{bind, controllers, http, NodeError, NodeOptions, Security};
use crate::config::cluster::{NodeRole, ReplicationMode};
use crate::controller::client::MetadataView;
use crate::controller::metadata::Command;
use crate::controller::raft::RaftController;
use crate::controller::service::ControllerService;
use crate::query::users::bootstrap_admin;
use crate::replication::master::pull::PullService;
use crate::replication::model::{ReplicationCommand, ReplicationConfig, ReplicationRole};
use crate::replication::slave::{run_slave, SlaveOptions};
use crate::rpc::client::Peers;
use crate::rpc::server::{serve, FlightRouter};

/// A running controller.
pub struct ControllerNode {
    pub raft: Arc<RaftController>,
    pub addr: String,
    options: NodeOptions,
    listener: tokio::net::TcpListener,
    peers: Arc<Peers>,
    /// How a slave controller reaches the master's.
    master_peers: Arc<Peers>,
    security: Security,
}

impl ControllerNode {
    /// Opens the controller's raft member and binds its port.
    pub async fn start(options: NodeOptions) -> Result<Self, NodeError> {
        let entry = options.entry(NodeRole::Controller)?.clone();
        let listener = bind(&entry).await?;
        let addr = super::addr_of(&entry);
        let members: BTreeMap<u64, BasicNode> = controllers(&options.config)
            .into_iter()
            .map(|(id, _, a)| (id, BasicNode::new(a)))
            .collect();
        let id = controllers(&options.config)
            .into_iter()
            .find(|(_, alias, _)| *alias == options.alias)
            .map(|(id, _, _)| id)
            .unwrap_or(1);
        let dir = options
            .config
            .controller
            .meta_dir
            .as_ref()
            // Relative to the node's directory (an absolute path replaces it).
            .map(|d| options.dir().join(d))
            .unwrap_or_else(|| options.dir().join("raft"));
        let settings = &options.config.controller.tls;
        let security = options.security(settings, &entry)?;
        let peers = security.peers.clone();
        let master_peers = options.master_peers(settings, &security)?;
        let raft = Arc::new(RaftController::open(&dir, id, members, peers.clone()).await?);
        tracing::info!(alias = %options.alias, node_id = id, %addr, "controller started");
        Ok(ControllerNode {
            raft,
            addr,
            options,
            listener,
            peers,
            master_peers,
            security,
        })
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), NodeError> {
        let service = Arc::new(
            ControllerService::new(
                self.raft.clone(),
                self.options.alias.clone(),
                self.addr.clone(),
            )
            .with_members(
                controllers(&self.options.config)
                    .into_iter()
                    .map(|(id, alias, _)| (alias, id))
                    .collect(),
            ),
        );
        let duties = tokio::spawn(leader_duties(
            self.raft.clone(),
            self.options.clone(),
            self.security.identity.cluster.clone(),
        ));
        let config = &self.options.config;
        let slave = match (
            config.datanode.replication_mode,
            config.controller.replication_master_ctl,
        ) {
            (Some(ReplicationMode::Slave), Some(master)) => {
                let options = SlaveOptions {
                    master_ctl: master.to_string(),
                    addr: self.addr.clone(),
                    wait_ms: u64::from(config.controller.replication_pull_wait_ms),
                    batch: config.controller.replication_pull_batch,
                };
                Some(tokio::spawn(run_slave(
                    self.raft.clone(),
                    self.peers.clone(),
                    self.master_peers.clone(),
                    options,
                )))
            }
            _ => None,
        };
        let status = http::StatusSource {
            alias: self.options.alias.clone(),
            config: self.options.config.clone(),
            peers: self.peers.clone(),
            controller: Some(service.clone()),
            metadata: {
                let raft = self.raft.clone();
                Arc::new(move || raft.metadata())
            },
            datanode: None,
        };
        // A master's controller answers slaves' pulls; on any other cluster the pull service
        // refuses them (it is not a master).
        let pull = Arc::new(PullService::new(
            self.raft.clone(),
            self.options.config.public_addrs(),
        ));
        let router = FlightRouter::new().with(service).with(pull);
        // A controller learns whether admin has the default password only once the group
        // has formed and applied its log: it serves raft until then, and stops if so.
        let (refused_tx, refused_rx) = tokio::sync::oneshot::channel::<()>();
        let local = self.listener.local_addr().ok();
        let check = tokio::spawn(check_default_password(
            self.raft.clone(),
            config.controller.protected_mode,
            local,
            refused_tx,
        ));
        let shutdown = async move {
            tokio::select! {
                _ = shutdown => {}
                Ok(()) = refused_rx => {}
            }
        };
        serve(
            self.listener,
            None,
            Some(self.security.tls.clone()),
            self.security.insecure,
            router,
            http::router(status),
            shutdown,
        )
        .await;
        let refused = if check.is_finished() {
            matches!(check.await, Ok(true))
        } else {
            check.abort();
            false
        };
        duties.abort();
        if let Some(slave) = slave {
            slave.abort();
        }
        self.raft.shutdown().await?;
        if refused {
            return Err(NodeError::DefaultPassword {
                addr: local.map_or_else(|| self.addr.clone(), |a| a.to_string()),
                remedy: super::CLUSTER_REMEDY.into(),
            });
        }
        Ok(())
    }
}

/// Waits until the metadata holds the users, then tells `refused` (and answers true) if a
/// controller listening on `local` must not serve (`protectedMode`).
async fn check_default_password(
    raft: Arc<RaftController>,
    protected: bool,
    local: Option<std::net::SocketAddr>,
    refused: tokio::sync::oneshot::Sender<()>,
) -> bool {
    let Some(local) = local.filter(|a| protected && !a.ip().is_loopback()) else {
        return false;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let metadata = raft.metadata();
        if !metadata.has_users() {
            continue;
        }
        if super::refuses_default_password(true, local, &metadata) {
            tracing::error!(%local, "admin has the default password: stopping (protectedMode)");
            let _ = refused.send(());
            return true;
        }
        return false;
    }
}

/// While this controller leads, registers the configured data nodes, the replication role
/// (with the cluster's id, `cluster`, from its certificate) and the admin user.
async fn leader_duties(raft: Arc<RaftController>, options: NodeOptions, cluster: String) {
    let datanodes: Vec<(String, String)> = options
        .config
        .nodes
        .iter()
        .filter(|n| n.role == NodeRole::DataNode)
        .map(|n| (n.alias.clone(), super::addr_of(n)))
        .collect();
    let controller = &options.config.controller;
    let config = ReplicationConfig {
        role: options.config.datanode.replication_mode.map(|m| match m {
            ReplicationMode::Master => ReplicationRole::Master,
            ReplicationMode::Slave => ReplicationRole::Slave,
        }),
        slave_num: controller.replication_slave_num,
        queues: controller.replication_queue.unwrap_or(0),
        db_scope: controller.slave_db_scope.clone(),
        cluster_id: cluster,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        if !raft.is_leader() {
            continue;
        }
        let metadata = raft.metadata();
        if !metadata.replication().configured_as(&config) {
            if let Err(e) = raft
                .write(Command::Replication(
                    ReplicationCommand::ConfigureReplication(config.clone()),
                ))
                .await
            {
                tracing::debug!(error = %e, "cannot record the replication role yet");
            }
        }
        if !nodes_registered(&metadata, &datanodes) {
            if let Err(e) = raft
                .write(Command::SyncNodes {
                    datanodes: datanodes.clone(),
                })
                .await
            {
                tracing::debug!(error = %e, "cannot register the data nodes yet");
            }
        }
        if !metadata.has_users() {
            if let Err(e) = raft.write(bootstrap_admin()).await {
                tracing::debug!(error = %e, "cannot create the admin user yet");
            }
        }
    }
}

fn nodes_registered(metadata: &MetadataView, datanodes: &[(String, String)]) -> bool {
    datanodes.iter().all(|(alias, addr)| {
        metadata
            .node_by_alias(alias)
            .is_some_and(|n| &n.addr == addr)
    })
}
