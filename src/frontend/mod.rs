//! The PostgreSQL wire protocol front end (pgwire): SCRAM-SHA-256 authentication against the
//! controller's users, the simple and extended query protocols, COPY FROM STDIN, and the
//! encoding of Arrow results with PostgreSQL type OIDs.
//!
//! This is the only place that turns errors into client errors ([`error::error_info`]): every
//! error carries its SQLSTATE, and a failed statement never ends the session.

pub mod auth;
pub mod copy_format;
pub mod encode;
pub mod error;
mod handler;

use std::sync::Arc;

use tokio::net::TcpStream;

use crate::query::Engine;

/// A function that serves one pgwire connection (on a task of its own).
pub fn connection_handler(engine: Arc<Engine>) -> Arc<dyn Fn(TcpStream) + Send + Sync> {
    let auth = Arc::new(auth::ControllerAuth::new(engine.controller().clone()));
    Arc::new(move |socket: TcpStream| {
        let _ = socket.set_nodelay(true);
        let peer = socket.peer_addr().ok();
        let handlers = Arc::new(handler::Handlers::new(engine.clone(), auth.clone()));
        tokio::spawn(async move {
            if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                tracing::debug!(?peer, error = %e, "connection ended with an error");
            }
        });
    })
}
