//! Placeholder until the raft group lands (same API).
use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

use super::metadata::{Command, CommandResult, Metadata};

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("controller unavailable")]
    Unavailable,
}

impl ControllerError {
    pub fn sqlstate(&self) -> &'static str {
        "57P03"
    }
}

pub struct RaftController {
    tx: watch::Sender<Arc<Metadata>>,
    lock: tokio::sync::Mutex<()>,
}

impl RaftController {
    pub async fn open(_dir: &Path, _node_id: u64, _addr: String) -> Result<Self, ControllerError> {
        Ok(RaftController { tx: watch::channel(Arc::new(Metadata::default())).0, lock: Default::default() })
    }
    pub async fn write(&self, cmd: Command) -> Result<CommandResult, ControllerError> {
        let _g = self.lock.lock().await;
        let mut m = (**self.tx.borrow()).clone();
        let r = m.apply(&cmd);
        self.tx.send_replace(Arc::new(m));
        Ok(r)
    }
    pub fn metadata(&self) -> Arc<Metadata> {
        self.tx.borrow().clone()
    }
    pub fn subscribe(&self) -> watch::Receiver<Arc<Metadata>> {
        self.tx.subscribe()
    }
    pub async fn shutdown(&self) -> Result<(), ControllerError> {
        Ok(())
    }
}
