//! `porpoise standalone`: a controller (a raft group of one) and one data node in one process,
//! talking through the same interfaces they use in a cluster, serving pgwire. Start-up errors
//! are the cluster nodes' ([`NodeError`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::cluster::NodeError;
use crate::config::PgwireSettings;
use crate::controller::client::ControllerClient;
use crate::controller::metadata::CommandResult;
use crate::controller::raft::RaftController;
use crate::datanode::{DataNode, DataNodeOptions};
use crate::query::users::bootstrap_admin;
use crate::query::Engine;
use crate::rpc::identity::NodeIdentity;
use crate::rpc::tls::ServerTls;

/// Options of a standalone server.
#[derive(Clone, Debug)]
pub struct StandaloneOptions {
    pub home: PathBuf,
    pub listen: SocketAddr,
    pub datanode: DataNodeOptions,
    /// `pgwireSSLOnly`, `authenticationTimeout`, `maxConnections`.
    pub pgwire: PgwireSettings,
    /// `protectedMode`: refuse an address other than loopback while admin has the default
    /// password.
    pub protected_mode: bool,
}

/// A running standalone server.
pub struct Standalone {
    pub controller: Arc<RaftController>,
    pub node: Arc<DataNode>,
    pub engine: Arc<Engine>,
    /// Where pgwire listens (the real port when 0 was asked for).
    pub addr: SocketAddr,
    listener: Option<TcpListener>,
    tls: Arc<ServerTls>,
    pgwire: PgwireSettings,
}

impl Standalone {
    /// Opens (or creates) the server's state under `options.home` and binds its port.
    pub async fn start(options: StandaloneOptions) -> Result<Self, NodeError> {
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| NodeError::Listen {
                    addr: options.listen.to_string(),
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| NodeError::Listen {
            addr: options.listen.to_string(),
            source,
        })?;
        let controller = Arc::new(
            RaftController::open_single(&options.home.join("controller"), 1, addr.to_string())
                .await?,
        );
        if !controller.metadata().has_users() {
            let result = controller.write(bootstrap_admin()).await?;
            if let CommandResult::Err(e) = result {
                return Err(NodeError::Bootstrap(e.to_string()));
            }
        }
        if crate::cluster::refuses_default_password(
            options.protected_mode,
            addr,
            &controller.metadata(),
        ) {
            controller.shutdown().await?;
            return Err(NodeError::DefaultPassword {
                addr: addr.to_string(),
                remedy: format!(
                    "Start it once on 127.0.0.1 (--host 127.0.0.1, same --home), run \
                     ALTER USER admin PASSWORD '<new password>'; then start it on {} again. \
                     Or set protectedMode=false in porpoise.cfg to accept the risk.",
                    addr.ip()
                ),
            });
        }
        let client: Arc<dyn ControllerClient> = controller.clone();
        let node = DataNode::open(
            1,
            &options.home.join("datanode"),
            client,
            Arc::default(),
            options.datanode,
        )
        .await?;
        let engine = Engine::new(node.clone())?;
        let identity = NodeIdentity::load_or_create(
            &options.home.join("certs"),
            &options.home.join("ca"),
            "standalone",
            &[addr.ip().to_string()],
        )?;
        // Always TLS: pgwire clients get it when they ask (sslmode), with channel binding.
        let tls = ServerTls::new(&identity, None)?;
        Ok(Standalone {
            controller,
            node,
            engine,
            addr,
            listener: Some(listener),
            tls,
            pgwire: options.pgwire,
        })
    }

    /// Serves clients until `shutdown` resolves, then stops the controller cleanly. The port
    /// is served like a cluster node's: pgwire, plus Flight and HTTP (which answer nothing yet).
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), NodeError> {
        let Some(listener) = self.listener.take() else {
            return Ok(());
        };
        let pg = crate::frontend::connection_handler(
            self.engine.clone(),
            Some(self.tls.clone()),
            self.pgwire.clone(),
        );
        crate::rpc::server::serve(
            listener,
            Some(pg),
            Some(self.tls.clone()),
            false,
            crate::rpc::server::FlightRouter::new(),
            axum::Router::new(),
            shutdown,
        )
        .await;
        self.controller.shutdown().await?;
        Ok(())
    }
}
