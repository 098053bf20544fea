//! `porpoise datanode`: a data node of a cluster. It keeps a copy of the controller's
//! metadata ([`RemoteController`]), stores the partitions placed on it, coordinates the
//! statements of its pgwire clients, and answers other data nodes' scan fragments and
//! transaction steps.

use std::sync::Arc;
use std::time::Duration;

use super::{bind, controllers, http, NodeError, NodeOptions, Security};
use crate::config::cluster::NodeRole;
use crate::controller::client::ControllerClient;
use crate::controller::remote::RemoteController;
use crate::datanode::{DataNode, DataNodeOptions};
use crate::query::service::DataService;
use crate::query::Engine;
use crate::replication::master::serve::MasterDataService;
use crate::replication::slave::apply::ApplyService;
use crate::replication::slave::seed::SeedService;
use crate::rpc::client::Peers;
use crate::rpc::server::{serve, FlightRouter};

/// How long a starting data node waits for the controllers.
const CONTROLLER_WAIT: Duration = Duration::from_secs(120);

/// A running data node.
pub struct DataNodeProcess {
    pub node: Arc<DataNode>,
    pub engine: Arc<Engine>,
    pub addr: String,
    options: NodeOptions,
    listener: tokio::net::TcpListener,
    peers: Arc<Peers>,
    security: Security,
}

impl DataNodeProcess {
    /// Binds the port, connects to the controllers, waits to be registered, opens the data.
    pub async fn start(options: NodeOptions) -> Result<Self, NodeError> {
        let entry = options.entry(NodeRole::DataNode)?.clone();
        let listener = bind(&entry).await?;
        let addr = super::addr_of(&entry);
        let file = &options.config.datanode;
        let security = options.security(&file.tls, &entry)?;
        let peers = security.peers.clone();
        let addrs = controllers(&options.config)
            .into_iter()
            .map(|(_, alias, addr)| (alias, addr))
            .collect();
        let client = RemoteController::connect(peers.clone(), addrs, CONTROLLER_WAIT).await?;
        let mut rx = client.subscribe();
        let alias = options.alias.clone();
        let registered = tokio::time::timeout(
            CONTROLLER_WAIT,
            rx.wait_for(|m| m.node_by_alias(&alias).is_some_and(|n| n.addr == addr)),
        )
        .await;
        let id = match &registered {
            Ok(Ok(m)) => m.node_by_alias(&alias).map(|n| n.id),
            _ => None,
        }
        .ok_or_else(|| NodeError::UnknownAlias {
            dir: options.config.dir.clone(),
            alias: alias.clone(),
            role: "registered datanode",
        })?;
        drop(registered);
        let local = listener.local_addr().map_err(|source| NodeError::Listen {
            addr: addr.clone(),
            source,
        })?;
        if file.protected_mode && !local.ip().is_loopback() {
            // The leader creates admin right after registering the data nodes: wait for the
            // users in this node's copy of the metadata.
            let users = tokio::time::timeout(CONTROLLER_WAIT, rx.wait_for(|m| m.has_users())).await;
            let metadata = match users {
                Ok(Ok(m)) => m.clone(),
                _ => client.metadata(),
            };
            if super::refuses_default_password(true, local, &metadata) {
                return Err(NodeError::DefaultPassword {
                    addr: local.to_string(),
                    remedy: super::CLUSTER_REMEDY.into(),
                });
            }
        }
        let node_options = DataNodeOptions {
            new_value_policy: file.new_value_policy,
            compaction_min_files: file.compaction_min_files,
            snapshot_retention: file.snapshot_retention,
            seed_rate: file.replication_seed_rate_mb.saturating_mul(1 << 20),
            // Relative to the node's own directory, as `dfsMetaDir` is (an absolute path
            // replaces it): each data node keeps its task data apart, whatever the process's
            // working directory.
            replication_dir: file
                .replication_work_dir
                .as_ref()
                .map(|d| options.dir().join(d))
                .unwrap_or_else(|| options.dir().join("clusterReplication")),
            replication_sync: file.replication_sync_persistence,
            replication_user: (
                file.replication_execution_user.clone(),
                file.replication_execution_password.clone(),
            ),
            replication_workers: file.replication_worker_num as usize,
            master_peers: Some(options.master_peers(&file.tls, &security)?),
            limits: file.limits,
            ..DataNodeOptions::default()
        };
        let node = DataNode::open(
            id,
            &options.dir().join("data"),
            client,
            peers.clone(),
            node_options,
        )
        .await?;
        let engine = Engine::new(node.clone())?;
        tracing::info!(alias = %options.alias, node_id = id, %addr, "data node started");
        Ok(DataNodeProcess {
            node,
            engine,
            addr,
            options,
            listener,
            peers,
            security,
        })
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), NodeError> {
        let status = http::StatusSource {
            alias: self.options.alias.clone(),
            config: self.options.config.clone(),
            peers: self.peers.clone(),
            controller: None,
            metadata: {
                let node = self.node.clone();
                Arc::new(move || node.controller().metadata())
            },
            datanode: Some(self.node.clone()),
        };
        let router = FlightRouter::new()
            .with(Arc::new(DataService::new(self.engine.clone())))
            .with(Arc::new(MasterDataService::new(self.node.clone())))
            .with(Arc::new(ApplyService::new(self.engine.clone())))
            .with(Arc::new(SeedService::new(self.engine.clone())));
        let tls = Some(self.security.tls.clone());
        let pg = crate::frontend::connection_handler(
            self.engine.clone(),
            tls.clone(),
            self.options.config.datanode.pgwire.clone(),
        );
        serve(
            self.listener,
            Some(pg),
            tls,
            self.security.insecure,
            router,
            http::router(status),
            shutdown,
        )
        .await;
        Ok(())
    }
}
