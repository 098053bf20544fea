//! The interface every other component uses to reach the controller: propose a metadata
//! change and wait for its outcome, read the latest metadata (a [`MetadataView`]: the catalog,
//! users, data nodes, transactions and replication state of one applied snapshot), be told
//! when it changes.
//!
//! In a standalone process the client is the raft group itself; in a cluster it is
//! [`super::remote::RemoteController`], which sends writes to the leader over rpc and follows
//! its change feed. Callers cannot tell the difference.

use async_trait::async_trait;
use tokio::sync::watch;

use super::error::ControllerError;
use super::metadata::{Command, CommandResult};
use super::raft::RaftController;
pub use super::view::MetadataView;

/// Access to the controller.
#[async_trait]
pub trait ControllerClient: Send + Sync + 'static {
    /// Proposes a command; returns once it is committed and applied.
    async fn write(&self, cmd: Command) -> Result<CommandResult, ControllerError>;
    /// The latest metadata this node has seen.
    fn metadata(&self) -> MetadataView;
    /// Notified on every change to the metadata.
    fn subscribe(&self) -> watch::Receiver<MetadataView>;
    /// The alias of the controller leader (`cluster.nodes`; `controller` for the one of a
    /// standalone server).
    async fn leader_alias(&self) -> Result<String, ControllerError>;
    /// The aliases of every controller of the cluster (`cluster.nodes`).
    fn controller_aliases(&self) -> Vec<String>;
}

#[async_trait]
impl ControllerClient for RaftController {
    async fn write(&self, cmd: Command) -> Result<CommandResult, ControllerError> {
        RaftController::write(self, cmd).await
    }

    fn metadata(&self) -> MetadataView {
        RaftController::metadata(self)
    }

    fn subscribe(&self) -> watch::Receiver<MetadataView> {
        RaftController::subscribe(self)
    }

    async fn leader_alias(&self) -> Result<String, ControllerError> {
        Ok(STANDALONE_ALIAS.to_string())
    }

    fn controller_aliases(&self) -> Vec<String> {
        vec![STANDALONE_ALIAS.to_string()]
    }
}

/// The alias `getControllerAlias()` reports for a standalone server's controller.
pub const STANDALONE_ALIAS: &str = "controller";
