//! `porpoise standalone`: a controller (a raft group of one) and one data node in one process,
//! talking through the same interfaces they use in a cluster, serving pgwire.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::controller::client::ControllerClient;
use crate::controller::metadata::{Command, CommandResult};
use crate::controller::raft::{ControllerError, RaftController};
use crate::datanode::{DataNode, DataNodeError, DataNodeOptions};
use crate::query::users::new_user;
use crate::query::{Engine, QueryError};

/// The user created on first start, as in DolphinDB.
pub const DEFAULT_ADMIN: (&str, &str) = ("admin", "123456");

/// Options of a standalone server.
#[derive(Clone, Debug)]
pub struct StandaloneOptions {
    pub home: PathBuf,
    pub listen: SocketAddr,
    pub datanode: DataNodeOptions,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("controller: {0}")]
    Controller(#[from] ControllerError),
    #[error("data node: {0}")]
    DataNode(#[from] DataNodeError),
    #[error("query engine: {0}")]
    Query(#[from] QueryError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the admin user: {0}")]
    Bootstrap(String),
}

/// A running standalone server.
pub struct Standalone {
    pub controller: Arc<RaftController>,
    pub node: Arc<DataNode>,
    pub engine: Arc<Engine>,
    /// Where pgwire listens (the real port when 0 was asked for).
    pub addr: SocketAddr,
    listener: Option<TcpListener>,
}

impl Standalone {
    /// Opens (or creates) the server's state under `options.home` and binds its port.
    pub async fn start(options: StandaloneOptions) -> Result<Self, StartError> {
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: options.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: options.listen,
            source,
        })?;
        let controller = Arc::new(
            RaftController::open_single(&options.home.join("controller"), 1, addr.to_string())
                .await?,
        );
        if controller.metadata().users.is_empty() {
            let (name, password) = DEFAULT_ADMIN;
            let result = controller
                .write(Command::CreateUser {
                    user: new_user(name, password, true),
                    if_not_exists: true,
                })
                .await?;
            if let CommandResult::Err(e) = result {
                return Err(StartError::Bootstrap(e.to_string()));
            }
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
        Ok(Standalone {
            controller,
            node,
            engine,
            addr,
            listener: Some(listener),
        })
    }

    /// Serves clients until `shutdown` resolves, then stops the controller cleanly.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), StartError> {
        let Some(listener) = self.listener.take() else {
            return Ok(());
        };
        let server = tokio::spawn(crate::frontend::serve(listener, self.engine.clone()));
        shutdown.await;
        server.abort();
        self.controller.shutdown().await?;
        Ok(())
    }
}
