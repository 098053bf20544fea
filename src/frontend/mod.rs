//! The PostgreSQL wire protocol front end (pgwire): SCRAM-SHA-256(-PLUS) authentication against
//! the verifiers in the controller's metadata ([`scram`], `startup`), the connection limit and
//! authentication timeout, the simple and extended query protocols, COPY FROM STDIN and COPY TO
//! STDOUT (`copy_out`), and the
//! encoding of Arrow results with PostgreSQL type OIDs.
//!
//! This is the only place that turns errors into client errors ([`error::error_info`]): every
//! error carries its SQLSTATE, and a failed statement never ends the session.

mod cancel;
mod copy_out;
pub mod encode;
pub mod error;
mod handler;
mod numeric;
mod params;
pub mod scram;
mod startup;

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};

use crate::config::PgwireSettings;
use crate::query::Engine;
use crate::rpc::tls::ServerTls;
use startup::{AuthContext, AuthState};

/// A function that serves one pgwire connection (on a task of its own); with `tls`, a client's
/// SSLRequest is accepted and SCRAM-SHA-256-PLUS is offered over it.
///
/// Each connection holds one of `max_connections` slots from its first byte until it closes;
/// one that finds none left is told 53300 after its startup message and closed. A connection
/// that has not authenticated within `auth_timeout` (TLS handshake included) is closed, and so
/// is one whose authentication was refused.
pub fn connection_handler(
    engine: Arc<Engine>,
    tls: Option<Arc<ServerTls>>,
    options: PgwireSettings,
) -> Arc<dyn Fn(TcpStream) + Send + Sync> {
    let cancels = Arc::new(cancel::CancelRegistry::default());
    let ctx = Arc::new(AuthContext::new(
        engine.controller().clone(),
        tls.as_ref()
            .map(|t| scram::end_point_hash(t.certificate().as_ref())),
        options.tls_only,
        cancels.keys(),
    ));
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let acceptor = tls.map(|t| t.acceptor().clone());
    Arc::new(move |socket: TcpStream| {
        let _ = socket.set_nodelay(true);
        let peer = socket.peer_addr().ok();
        let slot = slots.clone().try_acquire_owned().ok();
        let over_limit = slot.is_none().then(|| {
            tracing::warn!(
                ?peer,
                max = options.max_connections,
                "refused a connection: too many connections"
            );
            format!(
                "too many connections: this node serves at most {} (maxConnections)",
                options.max_connections
            )
        });
        let (auth_tx, mut auth_rx) = watch::channel(AuthState::Pending);
        let handlers = Arc::new(handler::Handlers::new(
            engine.clone(),
            Arc::new(startup::Startup::new(ctx.clone(), over_limit, auth_tx)),
            auth_rx.clone(),
            cancels.clone(),
        ));
        let acceptor = acceptor.clone();
        let timeout = options.auth_timeout;
        tokio::spawn(async move {
            // Frees the slot when the connection ends, however it ends.
            let _slot = slot;
            let serve = pgwire::tokio::process_socket(socket, acceptor, handlers);
            tokio::pin!(serve);
            let authenticated = tokio::select! {
                ended = &mut serve => {
                    if let Err(e) = ended {
                        tracing::debug!(?peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = tokio::time::sleep(timeout) => {
                    tracing::info!(?peer, ?timeout, "closed a connection that did not authenticate in time");
                    false
                }
                state = auth_rx.wait_for(|s| *s != AuthState::Pending) => {
                    state.is_ok_and(|s| *s == AuthState::Done)
                }
            };
            // Dropping `serve` closes the socket.
            if authenticated {
                if let Err(e) = serve.await {
                    tracing::debug!(?peer, error = %e, "connection ended with an error");
                }
            }
        });
    })
}
