//! The controller as a data node in a cluster reaches it: a [`ControllerClient`] that sends
//! writes to the leader over Arrow Flight and keeps a local copy of the metadata by
//! long-polling the leader's change feed ([`crate::controller::feed`]).
//!
//! - Leader discovery: writes go to the last known leader; a follower answers with the
//!   leader's address, an unreachable node makes the client try the next controller. A write
//!   keeps trying for [`WRITE_DEADLINE`], which covers an election.
//! - Exactly once: every write is wrapped in [`Command::Once`] with this client's id and a
//!   sequence number, so a write resent after a lost answer (the leader died after
//!   committing it) is answered from the controller's session table instead of being applied
//!   again.
//! - Read your writes: a write returns only once the local copy includes it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;

use super::client::ControllerClient;
use super::error::ControllerError;
use super::feed::MetadataUpdate;
use super::metadata::{Command, CommandResult};
use super::service::{
    ControllerStatus, WatchRequest, WriteReply, WriteRequest, STATUS, WATCH, WRITE,
};
use super::view::MetadataView;
use crate::rpc::client::Peers;
use crate::rpc::group::Group;
use crate::rpc::RpcError;
use crate::sqlstate::ErrorCode;

/// How long a write keeps trying to reach a leader.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(20);
/// How long one call to a controller may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one watch waits on the controller for a change.
const WATCH_WAIT: Duration = Duration::from_secs(3);

/// A client of a remote controller group.
pub struct RemoteController {
    peers: Arc<Peers>,
    controllers: Vec<String>,
    aliases: Vec<String>,
    group: Group,
    client_id: u64,
    seq: AtomicU64,
    waiting: Mutex<BTreeSet<u64>>,
    tx: watch::Sender<MetadataView>,
}

impl std::fmt::Debug for RemoteController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteController")
            .field("controllers", &self.controllers)
            .finish_non_exhaustive()
    }
}

impl RemoteController {
    /// Connects to the controller group at `controllers` (alias and `host:port` each): waits
    /// up to `deadline` for a first copy of the metadata, then keeps it current in the
    /// background.
    pub async fn connect(
        peers: Arc<Peers>,
        controllers: Vec<(String, String)>,
        deadline: Duration,
    ) -> Result<Arc<Self>, ControllerError> {
        let (tx, _) = watch::channel(MetadataView::default());
        let (aliases, controllers): (Vec<String>, Vec<String>) = controllers.into_iter().unzip();
        let client = Arc::new(RemoteController {
            peers,
            group: Group::new(controllers.clone()),
            controllers,
            aliases,
            client_id: rand::random(),
            seq: AtomicU64::new(0),
            waiting: Mutex::new(BTreeSet::new()),
            tx,
        });
        let start = Instant::now();
        loop {
            match client.poll(0, Duration::ZERO).await {
                Ok(()) => break,
                Err(e) if start.elapsed() < deadline => {
                    tracing::info!(error = %e, "waiting for the controllers");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    return Err(ControllerError::Unavailable {
                        reason: format!("no controller answered within {deadline:?}: {e}"),
                    })
                }
            }
        }
        tokio::spawn(Self::follow(Arc::downgrade(&client)));
        Ok(client)
    }

    /// One watch call: applies what changed after `since`.
    async fn poll(&self, since: u64, wait: Duration) -> Result<(), RpcError> {
        let addr = self.group.target();
        let req = WatchRequest {
            since,
            wait_ms: wait.as_millis() as u64,
        };
        let update: Result<MetadataUpdate, RpcError> = self
            .peers
            .call(&addr, WATCH, &req, wait + CALL_TIMEOUT)
            .await;
        match update {
            Ok(update) => {
                crate::fault::delay_point("metadata-received").await;
                let mut copy = self.tx.borrow().snapshot().clone();
                if update.apply_to(&mut copy) {
                    self.tx.send_replace(MetadataView::new(copy));
                }
                Ok(())
            }
            Err(e) => {
                self.group.failed(&e);
                Err(e)
            }
        }
    }

    /// Keeps the metadata copy current until the client is dropped.
    async fn follow(client: Weak<RemoteController>) {
        let mut failures = 0u32;
        loop {
            let Some(c) = client.upgrade() else { return };
            let since = c.tx.borrow().applied_index();
            match c.poll(since, WATCH_WAIT).await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(50) {
                        tracing::warn!(error = %e, "cannot reach the controller leader");
                    }
                    drop(c);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Waits until the local copy has applied the entry at `log_index`.
    async fn wait_applied(&self, log_index: u64, deadline: Instant) -> Result<(), ControllerError> {
        let mut rx = self.tx.subscribe();
        let wait = deadline.saturating_duration_since(Instant::now());
        let reached = tokio::time::timeout(wait, rx.wait_for(|m| m.applied_index() >= log_index))
            .await
            .is_ok_and(|r| r.is_ok());
        if reached {
            Ok(())
        } else {
            Err(ControllerError::Unavailable {
                reason: format!("the metadata did not reach version {log_index} in time"),
            })
        }
    }
}

#[async_trait]
impl ControllerClient for RemoteController {
    async fn write(&self, cmd: Command) -> Result<CommandResult, ControllerError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let acked_below = {
            let mut waiting = crate::lock(&self.waiting);
            waiting.insert(seq);
            waiting.first().copied().unwrap_or(seq)
        };
        let req = WriteRequest {
            cmd: Command::Once {
                client: self.client_id,
                seq,
                acked_below,
                cmd: Box::new(cmd),
            },
        };
        let deadline = Instant::now() + WRITE_DEADLINE;
        let mut backoff = Duration::from_millis(20);
        let outcome = loop {
            let addr = self.group.target();
            let answer: Result<WriteReply, RpcError> =
                self.peers.call(&addr, WRITE, &req, CALL_TIMEOUT).await;
            match answer {
                Ok(reply) => {
                    self.group.set_leader(Some(addr));
                    break Ok(reply);
                }
                Err(e) if e.retryable() && Instant::now() < deadline => {
                    if !self.group.failed(&e) {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_millis(500));
                    }
                }
                Err(e) => break Err(e),
            }
        };
        crate::lock(&self.waiting).remove(&seq);
        match outcome {
            Ok(reply) => {
                self.wait_applied(reply.log_index, deadline + CALL_TIMEOUT)
                    .await?;
                Ok(reply.result)
            }
            Err(e) => Err(ControllerError::from_rpc(&e)),
        }
    }

    fn metadata(&self) -> MetadataView {
        self.tx.borrow().clone()
    }

    fn subscribe(&self) -> watch::Receiver<MetadataView> {
        self.tx.subscribe()
    }

    fn controller_aliases(&self) -> Vec<String> {
        self.aliases.clone()
    }

    async fn leader_alias(&self) -> Result<String, ControllerError> {
        let deadline = Instant::now() + WRITE_DEADLINE;
        loop {
            let addr = self.group.target();
            let status: Result<ControllerStatus, RpcError> =
                self.peers.call(&addr, STATUS, &(), CALL_TIMEOUT).await;
            let leader = match status {
                Ok(s) => s.leader_addr,
                Err(e) => {
                    self.group.failed(&e);
                    None
                }
            };
            if let Some(leader) = leader {
                self.group.set_leader(Some(leader.clone()));
                if let Some(i) = self.controllers.iter().position(|c| *c == leader) {
                    return Ok(self.aliases[i].clone());
                }
            }
            if Instant::now() > deadline {
                return Err(ControllerError::ForwardToLeader {
                    leader_id: None,
                    leader_addr: None,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
