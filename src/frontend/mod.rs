//! The PostgreSQL wire protocol front end (pgwire): SCRAM-SHA-256 authentication against the
//! controller's users, the simple and extended query protocols, COPY FROM STDIN, and the
//! encoding of Arrow results with PostgreSQL type OIDs.
//!
//! This is the only place that turns errors into client errors ([`error::error_info`]): every
//! error carries its SQLSTATE, and a failed statement never ends the session.

pub mod auth;
mod cancel;
pub mod copy_format;
pub mod encode;
pub mod error;
mod handler;
mod numeric;

use std::sync::Arc;

use tokio::net::TcpStream;

use crate::query::Engine;
use crate::rpc::tls::ServerTls;

/// A function that serves one pgwire connection (on a task of its own); with `tls`, a client's
/// SSLRequest is accepted.
pub fn connection_handler(
    engine: Arc<Engine>,
    tls: Option<Arc<ServerTls>>,
) -> Arc<dyn Fn(TcpStream) + Send + Sync> {
    let auth = Arc::new(auth::ControllerAuth::new(engine.controller().clone()));
    let cancels = Arc::new(cancel::CancelRegistry::default());
    let acceptor = tls.map(|t| t.acceptor().clone());
    Arc::new(move |socket: TcpStream| {
        let _ = socket.set_nodelay(true);
        let peer = socket.peer_addr().ok();
        let handlers = Arc::new(handler::Handlers::new(
            engine.clone(),
            auth.clone(),
            cancels.clone(),
        ));
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Err(e) = pgwire::tokio::process_socket(socket, acceptor, handlers).await {
                tracing::debug!(?peer, error = %e, "connection ended with an error");
            }
        });
    })
}
