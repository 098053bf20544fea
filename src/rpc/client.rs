//! Calls to other nodes. [`Peers`] keeps one gRPC channel per address (HTTP/2 multiplexes every
//! call over it) and connects lazily, so a node that is down costs nothing until it is called.
//! [`Peers::with_tls`] makes every connection a TLS one (a slave's calls to the master).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{Action, FlightClient, FlightData, PutResult, Ticket};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use super::{decode, encode, RemoteError, RpcError};

/// Messages can be large (a metadata snapshot, a batch of rows); gRPC's 4 MiB default is not.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Clients of the other nodes, by `host:port`.
#[derive(Debug, Default)]
pub struct Peers {
    channels: Mutex<HashMap<String, Channel>>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Peers {
    pub fn new() -> Self {
        Peers::default()
    }

    /// Peers reached over TLS with `config`.
    pub fn with_tls(config: Arc<rustls::ClientConfig>) -> Self {
        Peers {
            channels: Mutex::default(),
            tls: Some(config),
        }
    }

    fn channel(&self, addr: &str) -> Result<Channel, RpcError> {
        let mut channels = crate::lock(&self.channels);
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|_| RpcError::Address {
                addr: addr.to_string(),
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        let channel = match &self.tls {
            None => endpoint.connect_lazy(),
            Some(config) => endpoint.connect_with_connector_lazy(tls_connector(config.clone())),
        };
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    /// A raw Flight client of `addr`.
    pub fn flight(&self, addr: &str) -> Result<FlightServiceClient<Channel>, RpcError> {
        Ok(FlightServiceClient::new(self.channel(addr)?)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// Calls action `call` on `addr` with `req`; the remote side's error comes back as
    /// [`RpcError::Remote`].
    pub async fn call<Req, Resp>(
        &self,
        addr: &str,
        call: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let body = encode(req)?;
        let mut client = self.flight(addr)?;
        let action = Action {
            r#type: call.to_string(),
            body,
        };
        let status = |s: tonic::Status| status_error(addr, call, s);
        let fut = async {
            let mut stream = client.do_action(action).await.map_err(status)?.into_inner();
            match stream.message().await.map_err(status)? {
                Some(r) => Ok(r.body),
                None => Err(RpcError::Empty {
                    addr: addr.to_string(),
                    call: call.to_string(),
                }),
            }
        };
        let body = tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| RpcError::Timeout {
                addr: addr.to_string(),
                call: call.to_string(),
                ms: timeout.as_millis() as u64,
            })??;
        let reply: Result<Resp, RemoteError> = decode(&body)?;
        Ok(reply?)
    }

    /// Streams the record batches of a `do_get` with the given ticket.
    pub async fn get(
        &self,
        addr: &str,
        ticket: Bytes,
    ) -> Result<arrow_flight::decode::FlightRecordBatchStream, RpcError> {
        let mut client = FlightClient::new_from_inner(self.flight(addr)?);
        client
            .do_get(Ticket { ticket })
            .await
            .map_err(|e| flight_error(addr, "do_get", e))
    }

    /// Sends a stream of Flight data with `do_put`; returns the application metadata of the
    /// server's answers. An error in `data` ends the call with that error.
    pub async fn put<S>(&self, addr: &str, data: S) -> Result<Vec<Bytes>, RpcError>
    where
        S: Stream<Item = Result<FlightData, arrow_flight::error::FlightError>> + Send + 'static,
    {
        let mut client = FlightClient::new_from_inner(self.flight(addr)?);
        let mut answers = client
            .do_put(data)
            .await
            .map_err(|e| flight_error(addr, "do_put", e))?;
        let mut out = Vec::new();
        while let Some(r) = answers.next().await {
            let r: PutResult = r.map_err(|e| flight_error(addr, "do_put", e))?;
            out.push(r.app_metadata);
        }
        Ok(out)
    }
}

/// Connects over TCP, then TLS, to the `host:port` of a channel's URI. HTTP/2 then runs
/// inside the TLS session without ALPN, as it does over plain TCP.
fn tls_connector(
    config: Arc<rustls::ClientConfig>,
) -> impl tower::Service<
    tonic::codegen::http::Uri,
    Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    Error = std::io::Error,
    Future = impl Send,
> + Send
       + Clone
       + 'static {
    let connector = tokio_rustls::TlsConnector::from(config);
    tower::service_fn(move |uri: tonic::codegen::http::Uri| {
        let connector = connector.clone();
        async move {
            let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
            let port = uri.port_u16().unwrap_or(80);
            let tcp = tokio::net::TcpStream::connect((host, port)).await?;
            tcp.set_nodelay(true)?;
            let name = rustls::pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let tls = connector.connect(name, tcp).await.map_err(|e| {
                // A node without TLS hangs up on the handshake.
                let hint = match e.kind() {
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                        " (does it set enableClusterReplicationSSL=true?)"
                    }
                    _ => "",
                };
                std::io::Error::new(
                    e.kind(),
                    format!("TLS handshake with {host}:{port} failed: {e}{hint}"),
                )
            })?;
            Ok(hyper_util::rt::TokioIo::new(tls))
        }
    })
}

/// Maps a gRPC status to our error. A status carrying a [`RemoteError`] in its details (see
/// [`super::server::to_status`]) becomes that error, whatever its code: the remote node's
/// SQLSTATE, message and retryability. A status without one was made by the transport (or by
/// a gRPC server that refused the call before porpoise saw it): unreachable or broken
/// connections are connection failures, anything else a protocol violation.
pub fn status_error(addr: &str, call: &str, status: tonic::Status) -> RpcError {
    if let Ok(remote) = decode::<RemoteError>(status.details()) {
        return RpcError::Remote(remote);
    }
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Cancelled => RpcError::Unreachable {
            addr: addr.to_string(),
            status: Box::new(status),
        },
        // What hyper and h2 report for a connection reset or closed mid-call, an HTTP/2 stream
        // reset, a body cut short (and, from a node of the build before this one, an error in
        // the middle of a scan, which it sent without details).
        tonic::Code::Unknown
        | tonic::Code::Internal
        | tonic::Code::DeadlineExceeded
        | tonic::Code::Aborted => RpcError::Broken {
            addr: addr.to_string(),
            call: call.to_string(),
            status: Box::new(status),
        },
        _ => RpcError::Status {
            addr: addr.to_string(),
            call: call.to_string(),
            status: Box::new(status),
        },
    }
}

/// Maps an error of arrow-flight's client to ours.
pub fn flight_error(addr: &str, call: &str, e: arrow_flight::error::FlightError) -> RpcError {
    match e {
        arrow_flight::error::FlightError::Tonic(status) => status_error(addr, call, *status),
        other => RpcError::Flight {
            addr: addr.to_string(),
            call: call.to_string(),
            source: Box::new(other),
        },
    }
}
