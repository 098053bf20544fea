//! One port per node, as in DolphinDB: [`serve`] looks at the first byte of each connection
//! and hands it to pgwire (a PostgreSQL startup or SSL request begins with a zero byte: the
//! high byte of its length), to TLS (a handshake record, `0x16`), or to the gRPC/HTTP server
//! (HTTP/2's preface `PRI`, or an HTTP/1.1 method for the status pages).
//!
//! The gRPC side is one Arrow Flight service, [`FlightRouter`], that passes each call to the
//! node role ([`Service`]) that answers it: actions by name, `do_get`s by their ticket's kind
//! (see [`super::encode_ticket`]), `do_put`s by the one role that takes rows. Each role
//! registers its own service in the node's composition root; no service decodes another's
//! messages.
//!
//! Nothing reaches a service without proving who it is: one interceptor ([`authenticate`]) in
//! front of the Flight service, run before a message is even decoded, takes only callers
//! whose TLS client certificate made them a [`Peer`] ([`super::tls`]); everyone else gets
//! `Unauthenticated` (SQLSTATE 28000) and nothing else. A slave cluster's node may then make
//! the calls slaves make ([`Service::is_slave_call`]) and no other (42501). A node started
//! `--insecure` takes every call, as before TLS ([`Caller::Unverified`]).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::Stream;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status, Streaming};

use super::client::MAX_MESSAGE_BYTES;
use super::tls::{Peer, ServerTls};
use super::{encode, RemoteError};
use crate::sqlstate::{ErrorCode, SqlState};

/// A stream of Flight data answering a `do_get`.
pub type FlightStream = BoxStream<'static, Result<FlightData, Status>>;

/// What one node role answers.
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// Whether this role answers action `call`.
    fn handles(&self, call: &str) -> bool;

    /// Answers an action of `caller` with an encoded `Result<T, RemoteError>` (see
    /// [`reply`]).
    async fn action(&self, caller: &Caller, call: &str, body: Bytes) -> Bytes;

    /// Whether this role serves `do_get` tickets of `kind` (see [`super::encode_ticket`]).
    fn handles_ticket(&self, _kind: &str) -> bool {
        false
    }

    /// Whether this role consumes `do_put` streams.
    fn handles_put(&self) -> bool {
        false
    }

    /// Whether `call` is one that slave clusters make (pulling tasks, fetching task data).
    fn is_slave_call(&self, _call: Call<'_>) -> bool {
        false
    }

    /// Streams the answer to a `do_get` ticket of `kind`.
    async fn get(
        &self,
        _caller: &Caller,
        _kind: &str,
        _ticket: Bytes,
    ) -> Result<FlightStream, Status> {
        Err(Status::unimplemented("do_get"))
    }

    /// Consumes a `do_put`; returns the application metadata of the one answer.
    async fn put(&self, _caller: &Caller, _data: Streaming<FlightData>) -> Result<Bytes, Status> {
        Err(Status::unimplemented("do_put"))
    }
}

/// Who made a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A node that proved who it is with its certificate.
    Peer(Peer),
    /// Anyone who reached the port: the node runs `--insecure`.
    Unverified,
}

impl Caller {
    /// The alias of a node of this cluster (`None` for slaves; anyone's word when insecure).
    pub fn member(&self) -> Option<&str> {
        match self {
            Caller::Peer(Peer::Member { alias }) => Some(alias),
            _ => None,
        }
    }
}

/// The interceptor in front of every Flight call: the caller's [`Caller`], put into the
/// request for the router, or `Unauthenticated` before the message is read.
pub fn authenticate(insecure: bool) -> impl tonic::service::Interceptor + Clone {
    move |mut request: Request<()>| {
        let origin = request.extensions().get::<Origin>();
        let caller = match origin.and_then(|o| o.peer.clone()) {
            Some(peer) => Caller::Peer(peer),
            None if insecure => Caller::Unverified,
            None => {
                let presented = match origin {
                    Some(Origin {
                        presented: Some(p), ..
                    }) => format!("; the certificate presented ({p}) is not one of them"),
                    Some(Origin { tls: true, .. }) => "; none was presented".to_string(),
                    _ => "; this call came in plain text".to_string(),
                };
                return Err(refusal(
                    tonic::Code::Unauthenticated,
                    SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                    &format!(
                        "this node takes calls only from nodes presenting, over TLS, a \
                         certificate of its cluster or of a slave cluster it trusts \
                         (clusterReplicationSlaveCAFile){presented}"
                    ),
                ));
            }
        };
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// A refusal carrying its [`RemoteError`], so callers see its SQLSTATE.
fn refusal(code: tonic::Code, sqlstate: SqlState, message: &str) -> Status {
    status_of(code, RemoteError::new(sqlstate, message))
}

/// A call as [`Service::is_slave_call`] sees it: an action by name, a `do_get` by its
/// ticket's kind, or a `do_put`.
#[derive(Clone, Copy, Debug)]
pub enum Call<'a> {
    Action(&'a str),
    Get(&'a str),
    Put,
}

/// Encodes an action's answer.
pub fn reply<T: Serialize>(result: Result<T, RemoteError>) -> Bytes {
    match encode(&result) {
        Ok(b) => b,
        Err(e) => {
            let e = RemoteError::new(SqlState::INTERNAL_ERROR, e.to_string());
            encode(&Err::<(), _>(e)).unwrap_or_default()
        }
    }
}

/// A gRPC status carrying a [`RemoteError`] in its details, for `do_get`/`do_put` failures
/// (actions answer errors in their body instead), whether the call fails before its stream
/// starts or in the middle of it ([`stream_status`]).
pub fn to_status(e: RemoteError) -> Status {
    status_of(tonic::Code::Aborted, e)
}

/// The status ending a `do_get` stream that failed midway. Services put their error into the
/// stream as `FlightError::ExternalError` holding a [`RemoteError`]
/// ([`RemoteError::from_error`]), which travels in the status details like any other call
/// failure; anything else the Flight encoder reports is an internal error of this node.
pub fn stream_status(e: FlightError) -> Status {
    match e {
        FlightError::ExternalError(inner) => match inner.downcast::<RemoteError>() {
            Ok(remote) => to_status(*remote),
            Err(other) => to_status(RemoteError::new(
                SqlState::INTERNAL_ERROR,
                other.to_string(),
            )),
        },
        other => to_status(RemoteError::new(
            SqlState::INTERNAL_ERROR,
            other.to_string(),
        )),
    }
}

/// `e` as an error item of a `do_get` stream, for [`stream_status`] to send.
pub fn stream_error(e: &(impl ErrorCode + ?Sized)) -> FlightError {
    FlightError::ExternalError(Box::new(RemoteError::from_error(e)))
}

/// A gRPC status of `code` carrying `e` in its details, which callers decode back into `e`.
fn status_of(code: tonic::Code, e: RemoteError) -> Status {
    let details = encode(&e).unwrap_or_default();
    Status::with_details(code, e.message.clone(), details)
}

/// The node's Flight service: dispatches every call to the role that answers it.
#[derive(Clone, Default)]
pub struct FlightRouter {
    services: Vec<Arc<dyn Service>>,
}

impl FlightRouter {
    pub fn new() -> Self {
        FlightRouter::default()
    }

    pub fn with(mut self, service: Arc<dyn Service>) -> Self {
        self.services.push(service);
        self
    }

    /// The caller the interceptor established; a slave cluster's node is refused any call
    /// but the ones slaves make.
    fn caller<T>(
        service: &Arc<dyn Service>,
        request: &Request<T>,
        call: Call<'_>,
    ) -> Result<Caller, Status> {
        let caller = request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| {
                refusal(
                    tonic::Code::Unauthenticated,
                    SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                    "the caller is not authenticated",
                )
            })?;
        if matches!(caller, Caller::Peer(Peer::Slave { .. })) && !service.is_slave_call(call) {
            return Err(refusal(
                tonic::Code::PermissionDenied,
                SqlState::INSUFFICIENT_PRIVILEGE,
                "a slave cluster may only pull tasks, task data and files",
            ));
        }
        Ok(caller)
    }

    fn put_service(&self) -> Result<&Arc<dyn Service>, Status> {
        self.services
            .iter()
            .find(|s| s.handles_put())
            .ok_or_else(|| Status::unimplemented("this node stores no data"))
    }
}

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[async_trait]
impl FlightService for FlightRouter {
    type HandshakeStream = Boxed<HandshakeResponse>;
    type ListFlightsStream = Boxed<FlightInfo>;
    type DoGetStream = Boxed<FlightData>;
    type DoPutStream = Boxed<PutResult>;
    type DoExchangeStream = Boxed<FlightData>;
    type DoActionStream = Boxed<arrow_flight::Result>;
    type ListActionsStream = Boxed<ActionType>;

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented("handshake"))
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(Status::unimplemented("list_flights"))
    }

    async fn get_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(Status::unimplemented("get_flight_info"))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented("poll_flight_info"))
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        Err(Status::unimplemented("get_schema"))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let kind = super::ticket_kind(&request.get_ref().ticket).map_err(|e| {
            status_of(
                tonic::Code::InvalidArgument,
                RemoteError::new(crate::sqlstate::SqlState::PROTOCOL_VIOLATION, e.to_string()),
            )
        })?;
        let service = self
            .services
            .iter()
            .find(|s| s.handles_ticket(&kind))
            .ok_or_else(|| {
                status_of(
                    tonic::Code::Unimplemented,
                    RemoteError::new(
                        crate::sqlstate::SqlState::FEATURE_NOT_SUPPORTED,
                        format!("this node serves no {kind} tickets"),
                    ),
                )
            })?;
        let caller = Self::caller(service, &request, Call::Get(&kind))?;
        let stream = service
            .get(&caller, &kind, request.into_inner().ticket)
            .await?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let service = self.put_service()?;
        let caller = Self::caller(service, &request, Call::Put)?;
        let answer = service.put(&caller, request.into_inner()).await?;
        let result = PutResult {
            app_metadata: answer,
        };
        Ok(Response::new(Box::pin(futures::stream::once(async {
            Ok(result)
        }))))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("do_exchange"))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let service = self
            .services
            .iter()
            .find(|s| s.handles(&request.get_ref().r#type))
            .ok_or_else(|| {
                Status::unimplemented(format!(
                    "this node does not answer {}",
                    request.get_ref().r#type
                ))
            })?;
        let caller = Self::caller(service, &request, Call::Action(&request.get_ref().r#type))?;
        let action = request.into_inner();
        let body = service.action(&caller, &action.r#type, action.body).await;
        Ok(Response::new(Box::pin(futures::stream::once(async {
            Ok(arrow_flight::Result { body })
        }))))
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        Err(Status::unimplemented("list_actions"))
    }
}

/// Where a node hands pgwire connections.
pub type PgHandler = Arc<dyn Fn(TcpStream) + Send + Sync>;

/// How long a new connection may take to send its first byte, or to finish a TLS handshake.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Serves pgwire (when `pg` is given), Arrow Flight and the HTTP pages of `http` on
/// `listener` until `shutdown` resolves; with `tls`, Flight and HTTP over TLS too. Flight
/// calls are taken only from callers `tls` identified, unless `insecure`.
pub async fn serve(
    listener: TcpListener,
    pg: Option<PgHandler>,
    tls: Option<Arc<ServerTls>>,
    insecure: bool,
    flight: FlightRouter,
    http: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = mpsc::channel::<Result<Conn, std::io::Error>>(64);
    let routes = tonic::service::Routes::from(http).add_service(
        tonic::service::interceptor::InterceptedService::new(
            FlightServiceServer::new(flight)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            authenticate(insecure),
        ),
    );
    let grpc = tonic::transport::Server::builder()
        .accept_http1(true)
        .tcp_nodelay(true)
        .add_routes(routes)
        .serve_with_incoming_shutdown(ReceiverStream::new(rx), shutdown);
    let grpc = tokio::spawn(async move {
        if let Err(e) = grpc.await {
            tracing::warn!(error = %e, "gRPC server stopped");
        }
    });
    let accept = async move {
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the others.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let (pg, tls, tx) = (pg.clone(), tls.clone(), tx.clone());
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                let peeked =
                    tokio::time::timeout(FIRST_BYTE_TIMEOUT, socket.peek(&mut first)).await;
                let conn = match peeked {
                    Ok(Ok(1)) if first[0] == 0 => {
                        match pg {
                            Some(pg) => pg(socket),
                            None => {
                                tracing::debug!(%peer, "pgwire connection to a node without SQL")
                            }
                        }
                        return;
                    }
                    Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {
                        let Some(tls) = tls else {
                            tracing::debug!(%peer, "TLS handshake to a node without TLS");
                            return;
                        };
                        let accepted =
                            tokio::time::timeout(FIRST_BYTE_TIMEOUT, tls.acceptor().accept(socket))
                                .await;
                        match accepted {
                            Ok(Ok(stream)) => {
                                let certs = stream.get_ref().1.peer_certificates();
                                let origin = Origin {
                                    tls: true,
                                    peer: tls.peer(certs),
                                    user: tls.user(certs),
                                    presented: ServerTls::claimed(certs),
                                };
                                Conn::Tls(Box::new(stream), origin)
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        }
                    }
                    Ok(Ok(1)) => Conn::Plain(socket),
                    _ => {
                        tracing::debug!(%peer, "connection closed before its first byte");
                        return;
                    }
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
    };
    tokio::select! {
        _ = accept => {}
        _ = grpc => {}
    }
}

/// A connection the gRPC/HTTP server serves: plain, or inside TLS.
pub enum Conn {
    Plain(TcpStream),
    /// With what the client's certificate proved.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>, Origin),
}

/// What a request knows of its connection (in its extensions).
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub tls: bool,
    /// Who the client's certificate proved it is.
    pub peer: Option<Peer>,
    /// The SQL user a client certificate of this cluster proved (the status pages take it;
    /// the RPC services do not).
    pub user: Option<String>,
    /// What a certificate that proved nothing claimed, for the refusal.
    pub presented: Option<String>,
}

impl Connected for Conn {
    type ConnectInfo = Origin;

    fn connect_info(&self) -> Origin {
        match self {
            Conn::Plain(_) => Origin::default(),
            Conn::Tls(_, origin) => origin.clone(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s, _) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
