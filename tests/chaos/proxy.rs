//! [`FaultProxy`]: a TCP proxy on a loopback port in front of one node, which passes bytes
//! through until told to drop its connections, stall them, delay them or cut the link.
//!
//! Every connection is two pumps (client → node, node → client). A pump forwards each chunk
//! it reads according to the proxy's [`Link`] at that moment, so a change of the link takes
//! effect on open connections too, and a chunk is never reordered or lost while the
//! connection lives: a fault either delays bytes or closes the whole connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Forward at once.
    Pass,
    /// Forward each chunk after this delay.
    Delay(Duration),
    /// Hold every chunk (connections stay open, nothing arrives) until the link changes.
    Stall,
    /// Refuse new connections and close open ones.
    Cut,
}

struct Shared {
    target: Mutex<Option<SocketAddr>>,
    link: watch::Sender<Link>,
    /// Bumped to close every open connection.
    drops: watch::Sender<u64>,
}

/// A fault-injecting proxy; it runs on the tokio runtime it was bound on until dropped.
pub struct FaultProxy {
    pub port: u16,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Binds a free loopback port. Connections are closed until [`set_target`](Self::set_target).
    pub async fn bind() -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            target: Mutex::new(None),
            link: watch::channel(Link::Pass).0,
            drops: watch::channel(0).0,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        FaultProxy {
            port,
            shared,
            accept,
        }
    }

    /// The node the proxy forwards to.
    pub fn set_target(&self, port: u16) {
        *self.shared.target.lock().unwrap() = Some(SocketAddr::from(([127, 0, 0, 1], port)));
    }

    /// Sets the link for new and open connections; [`Link::Cut`] also closes open ones.
    pub fn set(&self, link: Link) {
        self.shared.link.send_replace(link);
        if link == Link::Cut {
            self.drop_connections();
        }
    }

    /// Closes every open connection (new ones are accepted as the link allows).
    pub fn drop_connections(&self) {
        self.shared.drops.send_modify(|n| *n += 1);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_connections();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let target = *shared.target.lock().unwrap();
        let (Some(target), false) = (target, *shared.link.borrow() == Link::Cut) else {
            drop(client);
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(node) = TcpStream::connect(target).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = node.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (nr, nw) = node.into_split();
            let up = tokio::spawn(pump(cr, nw, shared.clone()));
            let down = tokio::spawn(pump(nr, cw, shared));
            // When either direction ends, the connection is over: close both.
            let mut up = AbortOnDrop(up);
            let mut down = AbortOnDrop(down);
            tokio::select! {
                _ = &mut up.0 => {}
                _ = &mut down.0 => {}
            }
        });
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Forwards `from` to `to` as the link allows until either side closes or the connections
/// are dropped.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shared: Arc<Shared>,
) {
    let mut drops = shared.drops.subscribe();
    drops.borrow_and_update();
    let mut link = shared.link.subscribe();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = drops.changed() => return,
        };
        // Wait as the link says, giving up when the connection is dropped.
        let allowed = async {
            loop {
                let now = *link.borrow_and_update();
                match now {
                    Link::Pass => return true,
                    Link::Cut => return false,
                    Link::Delay(d) => {
                        tokio::time::sleep(d).await;
                        return true;
                    }
                    Link::Stall => {
                        if link.changed().await.is_err() {
                            return false;
                        }
                    }
                }
            }
        };
        let go = tokio::select! {
            go = allowed => go,
            _ = drops.changed() => false,
        };
        if !go || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
