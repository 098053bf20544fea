//! The startup phase of one pgwire connection: the connection limit, the TLS-only rule, and
//! SASL authentication with porpoise's own SCRAM-SHA-256 exchange ([`super::scram`]) against
//! the verifiers in the controller's metadata.
//!
//! Invariants:
//! - A refused connection gets one FATAL ErrorResponse and nothing else: no ReadyForQuery, and
//!   every later message is ignored until [`super::connection_handler`] closes it (it watches
//!   [`AuthState`]). Statements additionally check [`AuthState::Done`] themselves.
//! - An unknown user goes through the same exchange with a mock verifier and fails the same
//!   way as a wrong password (28P01), so a client cannot tell which users exist.
//! - Over TLS both SCRAM-SHA-256-PLUS (bound to the server's certificate) and SCRAM-SHA-256 are
//!   offered; without TLS only SCRAM-SHA-256.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::{ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, METADATA_USER};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::{watch, Mutex};

use super::error::fatal;
use super::scram::{self, Binding, ScramError, SCRAM_SHA_256, SCRAM_SHA_256_PLUS};
use crate::controller::client::ControllerClient;
use crate::query::users::SCRAM_ITERATIONS;
use crate::sqlstate::{ErrorCode, SqlState};

/// Where a connection's authentication is; [`super::connection_handler`] closes the connection
/// on `Refused` and stops the authentication timer on `Done`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthState {
    Pending,
    Done,
    Refused,
}

/// What every connection of a node shares for authentication.
pub struct AuthContext {
    pub controller: Arc<dyn ControllerClient>,
    /// `tls-server-end-point` data of the certificate this node presents, if it serves TLS.
    pub end_point: Option<Vec<u8>>,
    /// Refuse logins outside TLS (`pgwireSSLOnly`).
    pub tls_only: bool,
    /// Salts of users that do not exist ([`scram::mock_secret`]).
    pub mock_key: ring::hmac::Key,
    pub keys: Arc<dyn PidSecretKeyGenerator>,
}

impl AuthContext {
    pub fn new(
        controller: Arc<dyn ControllerClient>,
        end_point: Option<Vec<u8>>,
        tls_only: bool,
        keys: Arc<dyn PidSecretKeyGenerator>,
    ) -> Self {
        AuthContext {
            controller,
            end_point,
            tls_only,
            mock_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()),
            keys,
        }
    }
}

enum Step {
    /// Waiting for the startup message.
    Startup,
    /// AuthenticationSASL sent; `plus_offered` says whether SCRAM-SHA-256-PLUS was among it.
    Offered { plus_offered: bool },
    /// server-first sent.
    ServerFirst(Box<scram::ServerFirst>),
    /// Finished, one way or the other.
    Over,
}

/// One connection's startup handler.
pub struct Startup {
    ctx: Arc<AuthContext>,
    /// Set when the connection is over the node's limit: it is refused with this message.
    over_limit: Option<String>,
    step: Mutex<Step>,
    state: watch::Sender<AuthState>,
}

impl Startup {
    pub fn new(
        ctx: Arc<AuthContext>,
        over_limit: Option<String>,
        state: watch::Sender<AuthState>,
    ) -> Self {
        Startup {
            ctx,
            over_limit,
            step: Mutex::new(Step::Startup),
            state,
        }
    }

    /// Sends `info` as a FATAL error, closes the connection's sending side, and marks the
    /// connection refused.
    async fn refuse<C>(&self, client: &mut C, info: ErrorInfo) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // The error goes out before the state changes: the connection is dropped on Refused.
        let sent = client
            .send(PgWireBackendMessage::ErrorResponse(info.into()))
            .await
            .map_err(PgWireError::from);
        let _ = client.close().await.map_err(PgWireError::from);
        self.state.send_replace(AuthState::Refused);
        sent
    }

    async fn on_sasl<C>(
        &self,
        client: &mut C,
        step: &mut Step,
        msg: PasswordMessageFamily,
    ) -> Result<(), ErrorInfo>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = client.metadata().get(METADATA_USER).cloned();
        let user = user.unwrap_or_default();
        match std::mem::replace(step, Step::Over) {
            Step::Offered { plus_offered } => {
                let initial = msg
                    .into_sasl_initial_response()
                    .map_err(|_| protocol_violation("expected a SASLInitialResponse"))?;
                let plus = match initial.auth_method.as_str() {
                    SCRAM_SHA_256 => false,
                    SCRAM_SHA_256_PLUS if plus_offered => true,
                    other => {
                        return Err(fatal(
                            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                            format!("SASL mechanism {other:?} was not offered"),
                        ))
                    }
                };
                let data = initial
                    .data
                    .ok_or_else(|| protocol_violation("SASLInitialResponse without data"))?;
                let secret = {
                    let metadata = self.ctx.controller.metadata();
                    match metadata.user(&user) {
                        Some(u) => u.secret.clone(),
                        None => scram::mock_secret(&self.ctx.mock_key, &user, SCRAM_ITERATIONS),
                    }
                };
                let binding = Binding {
                    plus,
                    end_point: if plus_offered {
                        self.ctx.end_point.clone()
                    } else {
                        None
                    },
                };
                let first = scram::server_first(&data, &binding, secret)
                    .map_err(|e| scram_error(&user, e))?;
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::SASLContinue(Bytes::from(first.message.clone())),
                    ))
                    .await
                    .map_err(|_| protocol_violation("connection lost"))?;
                *step = Step::ServerFirst(Box::new(first));
                Ok(())
            }
            Step::ServerFirst(first) => {
                let response = msg
                    .into_sasl_response()
                    .map_err(|_| protocol_violation("expected a SASLResponse"))?;
                let server_final = first
                    .client_final(&response.data)
                    .map_err(|e| scram_error(&user, e))?;
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::SASLFinal(Bytes::from(server_final)),
                    ))
                    .await
                    .map_err(|_| protocol_violation("connection lost"))?;
                let (pid, key) = self.ctx.keys.generate(&*client);
                client.set_pid_and_secret_key(pid, key);
                self.state.send_replace(AuthState::Done);
                finish_authentication(client, &DefaultServerParameterProvider::default())
                    .await
                    .map_err(|_| protocol_violation("connection lost"))?;
                tracing::debug!(%user, peer = %client.socket_addr(), tls = client.is_secure(), "authenticated");
                Ok(())
            }
            Step::Startup | Step::Over => Err(protocol_violation("unexpected password message")),
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut step = self.step.lock().await;
        match (&*step, message) {
            (Step::Over, _) => Ok(()),
            (Step::Startup, PgWireFrontendMessage::Startup(startup)) => {
                if let Some(message) = &self.over_limit {
                    *step = Step::Over;
                    return self
                        .refuse(
                            client,
                            fatal(SqlState::TOO_MANY_CONNECTIONS, message.clone()),
                        )
                        .await;
                }
                if self.ctx.tls_only && !client.is_secure() {
                    *step = Step::Over;
                    tracing::info!(peer = %client.socket_addr(), "refused a login without TLS");
                    return self
                        .refuse(
                            client,
                            fatal(
                                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                                "this server accepts logins over TLS only (pgwireSSLOnly=true): \
                                 connect with sslmode=require"
                                    .into(),
                            ),
                        )
                        .await;
                }
                if let Err(e) = protocol_negotiation(client, &startup).await {
                    *step = Step::Over;
                    return self.refuse(client, e.into()).await;
                }
                save_startup_parameters_to_metadata(client, &startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                let plus_offered = client.is_secure() && self.ctx.end_point.is_some();
                let mut mechanisms = Vec::new();
                if plus_offered {
                    mechanisms.push(SCRAM_SHA_256_PLUS.to_string());
                }
                mechanisms.push(SCRAM_SHA_256.to_string());
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                        mechanisms,
                    )))
                    .await?;
                *step = Step::Offered { plus_offered };
                Ok(())
            }
            (
                Step::Offered { .. } | Step::ServerFirst(_),
                PgWireFrontendMessage::PasswordMessageFamily(msg),
            ) => match self.on_sasl(client, &mut step, msg).await {
                Ok(()) => Ok(()),
                Err(info) => {
                    *step = Step::Over;
                    self.refuse(client, info).await
                }
            },
            _ => {
                *step = Step::Over;
                self.refuse(
                    client,
                    protocol_violation("unexpected message during authentication"),
                )
                .await
            }
        }
    }
}

fn protocol_violation(what: &str) -> ErrorInfo {
    fatal(SqlState::PROTOCOL_VIOLATION, what.to_owned())
}

/// The client's error for a failed exchange; what went wrong is logged (without secrets).
fn scram_error(user: &str, e: ScramError) -> ErrorInfo {
    tracing::info!(%user, error = %e, "authentication failed");
    let message = match &e {
        ScramError::Proof => format!("password authentication failed for user \"{user}\""),
        other => other.to_string(),
    };
    fatal(e.sqlstate(), message)
}
