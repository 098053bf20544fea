//! One port per node, as in DolphinDB: [`serve`] looks at the first byte of each connection
//! and hands it to pgwire (a PostgreSQL startup or SSL request begins with a zero byte: the
//! high byte of its length) or to the gRPC/HTTP server (HTTP/2's preface `PRI`, or an HTTP/1.1
//! method for the status pages).
//!
//! The gRPC side is one Arrow Flight service, [`FlightRouter`], that passes each call to the
//! node role ([`Service`]) that answers it: the controller answers `raft.*` and `ctl.*`, a data
//! node `dn.*`, scans (`do_get`) and row streams (`do_put`).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

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
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::client::MAX_MESSAGE_BYTES;
use super::{encode, RemoteError};

/// A stream of Flight data answering a `do_get`.
pub type FlightStream = BoxStream<'static, Result<FlightData, Status>>;

/// What one node role answers.
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// Whether this role answers action `call`.
    fn handles(&self, call: &str) -> bool;

    /// Answers an action with an encoded `Result<T, RemoteError>` (see [`reply`]).
    async fn action(&self, call: &str, body: Bytes) -> Bytes;

    /// Whether this role serves `do_get` and `do_put`.
    fn handles_data(&self) -> bool {
        false
    }

    /// Streams the answer to a `do_get`.
    async fn get(&self, _ticket: Bytes) -> Result<FlightStream, Status> {
        Err(Status::unimplemented("do_get"))
    }

    /// Consumes a `do_put`; returns the application metadata of the one answer.
    async fn put(&self, _data: Streaming<FlightData>) -> Result<Bytes, Status> {
        Err(Status::unimplemented("do_put"))
    }
}

/// Encodes an action's answer.
pub fn reply<T: Serialize>(result: Result<T, RemoteError>) -> Bytes {
    match encode(&result) {
        Ok(b) => b,
        Err(e) => {
            encode(&Err::<(), _>(RemoteError::new("XX000", e.to_string()))).unwrap_or_default()
        }
    }
}

/// A gRPC status carrying a [`RemoteError`] in its details, for `do_get`/`do_put` failures
/// (actions answer errors in their body instead).
pub fn to_status(e: RemoteError) -> Status {
    let details = encode(&e).unwrap_or_default();
    Status::with_details(tonic::Code::Aborted, e.message.clone(), details)
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

    fn data_service(&self) -> Result<&Arc<dyn Service>, Status> {
        self.services
            .iter()
            .find(|s| s.handles_data())
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
        let service = self.data_service()?;
        let stream = service.get(request.into_inner().ticket).await?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let service = self.data_service()?;
        let answer = service.put(request.into_inner()).await?;
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
        let action = request.into_inner();
        let service = self
            .services
            .iter()
            .find(|s| s.handles(&action.r#type))
            .ok_or_else(|| {
                Status::unimplemented(format!("this node does not answer {}", action.r#type))
            })?;
        let body = service.action(&action.r#type, action.body).await;
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

/// How long a new connection may take to send its first byte.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves pgwire (when `pg` is given), Arrow Flight and the HTTP pages of `http` on
/// `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    pg: Option<PgHandler>,
    flight: FlightRouter,
    http: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = mpsc::channel::<Result<TcpStream, std::io::Error>>(64);
    let routes = tonic::service::Routes::from(http).add_service(
        FlightServiceServer::new(flight)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
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
            let (pg, tx) = (pg.clone(), tx.clone());
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                let peeked =
                    tokio::time::timeout(FIRST_BYTE_TIMEOUT, socket.peek(&mut first)).await;
                match peeked {
                    Ok(Ok(1)) if first[0] == 0 => match pg {
                        Some(pg) => pg(socket),
                        None => tracing::debug!(%peer, "pgwire connection to a node without SQL"),
                    },
                    Ok(Ok(1)) => {
                        let _ = tx.send(Ok(socket)).await;
                    }
                    _ => tracing::debug!(%peer, "connection closed before its first byte"),
                }
            });
        }
    };
    tokio::select! {
        _ = accept => {}
        _ = grpc => {}
    }
}
