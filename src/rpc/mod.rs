//! Node-to-node transport: Arrow Flight over gRPC, on the same port as pgwire and HTTP.
//!
//! - Control calls (raft messages, controller writes and metadata watches, transaction steps)
//!   are Flight `do_action`s whose type names the call (`raft.append`, `ctl.write`, ...) and
//!   whose body is a JSON [`Envelope`]; the answer is one Flight result holding an envelope of
//!   `Result<T, RemoteError>`.
//! - Row data travels as Arrow IPC in Flight `do_get` (scans) and `do_put` (rows sent to the
//!   data node that owns their partition).
//! - Errors travel as [`RemoteError`]s (SQLSTATE, message, retryability, leader hint), built
//!   from the error through [`crate::sqlstate::ErrorCode`]: in an action's answer, or in the
//!   details of the gRPC status that ends a `do_get` or `do_put`, whether before its stream or
//!   in the middle of it ([`server::to_status`], [`server::stream_status`]). The caller
//!   decodes them back ([`client::status_error`]); only a status the transport made up (no
//!   details) is a connection failure.
//!
//! Format: every envelope carries [`WIRE_VERSION`]; a node refuses a message of another
//! version with a clear error instead of misreading it. Fields added later get
//! `#[serde(default)]`, so the version changes only when old nodes could not read new messages.
//!
//! Entry points: [`client::Peers`] (calls to other nodes), [`server::serve`] (one port for
//! pgwire, Flight and HTTP), [`server::Service`] (what a node role answers).

pub mod client;
pub mod group;
pub mod identity;
pub mod server;
pub mod tls;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::sqlstate::{ErrorCode, SqlState};

/// Version of the messages this build sends and reads.
pub const WIRE_VERSION: u32 = 1;

/// A versioned message.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub v: u32,
    pub body: T,
}

/// Encodes a message body.
pub fn encode<T: Serialize + ?Sized>(body: &T) -> Result<Bytes, RpcError> {
    serde_json::to_vec(&Envelope {
        v: WIRE_VERSION,
        body,
    })
    .map(Bytes::from)
    .map_err(|source| RpcError::Encode { source })
}

/// Encodes a `do_get` ticket of `kind`: an envelope whose body is `{"<kind>": <body>}`. The
/// node's Flight router reads the kind ([`ticket_kind`]) and hands the ticket to the service
/// that serves it, which decodes its own body ([`decode_ticket`]).
pub fn encode_ticket<T: Serialize + ?Sized>(kind: &str, body: &T) -> Result<Bytes, RpcError> {
    encode(&std::collections::BTreeMap::from([(kind, body)]))
}

/// The kind of a `do_get` ticket.
pub fn ticket_kind(bytes: &[u8]) -> Result<String, RpcError> {
    let map: std::collections::BTreeMap<String, serde::de::IgnoredAny> = decode(bytes)?;
    let mut kinds = map.into_keys();
    match (kinds.next(), kinds.next()) {
        (Some(kind), None) => Ok(kind),
        _ => Err(RpcError::Ticket),
    }
}

/// The body of a `do_get` ticket of `kind`.
pub fn decode_ticket<T: DeserializeOwned>(kind: &str, bytes: &[u8]) -> Result<T, RpcError> {
    let mut map: std::collections::BTreeMap<String, T> = decode(bytes)?;
    map.remove(kind).ok_or(RpcError::Ticket)
}

/// Decodes a message body, refusing other versions.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RpcError> {
    #[derive(Deserialize)]
    struct Version {
        v: u32,
    }
    let version: Version =
        serde_json::from_slice(bytes).map_err(|source| RpcError::Decode { source })?;
    if version.v != WIRE_VERSION {
        return Err(RpcError::Version {
            found: version.v,
            supported: WIRE_VERSION,
        });
    }
    let envelope: Envelope<T> =
        serde_json::from_slice(bytes).map_err(|source| RpcError::Decode { source })?;
    Ok(envelope.body)
}

/// An error reported by the remote node, with what the caller needs to act on it: its
/// SQLSTATE, message and retryability, exactly as the node that raised it knew them (see
/// [`RemoteError::from_error`]).
///
/// Format: `sqlstate` is the five-character code as a JSON string, as it was when the field
/// was a `String`, so the previous build and this one read each other's errors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub sqlstate: SqlState,
    pub message: String,
    #[serde(default)]
    pub retryable: bool,
    /// Set when the remote controller is not the leader and knows who is (`host:port`).
    #[serde(default)]
    pub leader: Option<String>,
}

impl RemoteError {
    pub fn new(sqlstate: SqlState, message: impl Into<String>) -> Self {
        RemoteError {
            sqlstate,
            message: message.into(),
            retryable: false,
            leader: None,
        }
    }

    /// An error after which the same call may succeed later (or on another node).
    pub fn retryable(sqlstate: SqlState, message: impl Into<String>) -> Self {
        RemoteError {
            retryable: true,
            ..Self::new(sqlstate, message)
        }
    }

    /// `e` as the caller will see it: its SQLSTATE, client message and retryability.
    pub fn from_error(e: &(impl ErrorCode + ?Sized)) -> Self {
        RemoteError {
            sqlstate: e.sqlstate(),
            message: e.client_message(),
            retryable: e.retryable(),
            leader: None,
        }
    }
}

impl ErrorCode for RemoteError {
    fn sqlstate(&self) -> SqlState {
        self.sqlstate
    }

    fn retryable(&self) -> bool {
        self.retryable
    }
}

/// Why a call to another node failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("invalid node address {addr}")]
    Address { addr: String },
    /// No connection: refused, or the node went away before answering.
    #[error("node {addr} is unreachable ({})", status.message())]
    Unreachable {
        addr: String,
        status: Box<tonic::Status>,
    },
    /// The connection failed in the middle of the call (reset, truncated, broken HTTP/2
    /// stream): a status the transport made up, carrying no error of the remote node.
    #[error("the connection to node {addr} failed during {call} ({})", status.message())]
    Broken {
        addr: String,
        call: String,
        status: Box<tonic::Status>,
    },
    #[error("node {addr} did not answer {call} within {ms} ms")]
    Timeout { addr: String, call: String, ms: u64 },
    /// The remote gRPC server refused the call without an error of porpoise's (a call it
    /// does not serve, a message over its size limit).
    #[error("node {addr} failed {call}: {}", status.message())]
    Status {
        addr: String,
        call: String,
        status: Box<tonic::Status>,
    },
    /// An answer that is not valid Arrow Flight data.
    #[error("node {addr} sent {call} data that cannot be read: {source}")]
    Flight {
        addr: String,
        call: String,
        #[source]
        source: Box<arrow_flight::error::FlightError>,
    },
    #[error("cannot encode a message")]
    Encode {
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot decode a message")]
    Decode {
        #[source]
        source: serde_json::Error,
    },
    #[error("message version {found} is not supported (this node speaks {supported})")]
    Version { found: u32, supported: u32 },
    #[error("empty answer to {call} from {addr}")]
    Empty { addr: String, call: String },
    #[error("a do_get ticket must be one object with one kind")]
    Ticket,
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl ErrorCode for RpcError {
    /// A transport failure is a connection failure; an error of the remote node keeps its own
    /// code.
    fn sqlstate(&self) -> SqlState {
        match self {
            RpcError::Unreachable { .. } | RpcError::Broken { .. } | RpcError::Timeout { .. } => {
                SqlState::CONNECTION_FAILURE
            }
            RpcError::Status { .. }
            | RpcError::Flight { .. }
            | RpcError::Decode { .. }
            | RpcError::Version { .. }
            | RpcError::Empty { .. }
            | RpcError::Ticket => SqlState::PROTOCOL_VIOLATION,
            RpcError::Address { .. } => SqlState::CONFIG_FILE_ERROR,
            RpcError::Encode { .. } => SqlState::INTERNAL_ERROR,
            RpcError::Remote(e) => e.sqlstate,
        }
    }

    /// Only a failure of the transport may go away by itself; an error of the remote node is
    /// retryable when it was there.
    fn retryable(&self) -> bool {
        match self {
            RpcError::Unreachable { .. } | RpcError::Broken { .. } | RpcError::Timeout { .. } => {
                true
            }
            RpcError::Remote(e) => e.retryable,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_carry_their_version() {
        let bytes = encode(&vec![1u32, 2]).unwrap();
        assert_eq!(decode::<Vec<u32>>(&bytes).unwrap(), vec![1, 2]);
        let other = br#"{"v":99,"body":[1]}"#;
        let err = decode::<Vec<u32>>(other).unwrap_err();
        assert!(matches!(err, RpcError::Version { found: 99, .. }), "{err}");
        assert!(decode::<Vec<u32>>(b"garbage").is_err());
    }

    /// What a caller decodes from a status the server sent.
    fn received(status: tonic::Status) -> RpcError {
        client::status_error("127.0.0.1:1", "do_get", status)
    }

    #[test]
    fn every_sqlstate_survives_a_status_before_or_in_the_middle_of_a_stream() {
        let unnamed: SqlState = "HV000".parse().unwrap();
        for &code in SqlState::ALL.iter().chain([&unnamed]) {
            for retryable in [false, true] {
                let mut sent = RemoteError::new(code, format!("failure {code}"));
                sent.retryable = retryable;
                let statuses = [
                    server::to_status(sent.clone()),
                    server::stream_status(server::stream_error(&sent)),
                ];
                for status in statuses {
                    match received(status) {
                        RpcError::Remote(got) => {
                            assert_eq!(got, sent);
                            assert_eq!(RpcError::Remote(got).sqlstate(), code);
                        }
                        other => panic!("{code}: {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn a_stream_error_without_a_remote_error_is_an_internal_error_of_the_node() {
        let e = arrow_flight::error::FlightError::ProtocolError("bad batch".into());
        match received(server::stream_status(e)) {
            RpcError::Remote(r) => {
                assert_eq!(r.sqlstate, SqlState::INTERNAL_ERROR);
                assert!(!r.retryable);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_transport_failures_are_retryable_connection_failures() {
        for status in [
            tonic::Status::unavailable("connection refused"),
            tonic::Status::cancelled("connection reset"),
            tonic::Status::unknown("error reading a body from connection"),
            tonic::Status::internal("h2 protocol error: stream no longer needed"),
        ] {
            let e = received(status);
            assert_eq!(e.sqlstate(), SqlState::CONNECTION_FAILURE, "{e:?}");
            assert!(e.retryable(), "{e:?}");
        }
        // A gRPC server that refused the call itself: not a failure a retry gets past.
        for status in [
            tonic::Status::unimplemented("this node stores no data"),
            tonic::Status::resource_exhausted("message too large"),
        ] {
            let e = received(status);
            assert_eq!(e.sqlstate(), SqlState::PROTOCOL_VIOLATION, "{e:?}");
            assert!(!e.retryable(), "{e:?}");
        }
        // With a remote error in its details the status code does not matter.
        let sent = RemoteError::new(SqlState::DIVISION_BY_ZERO, "division by zero");
        let details = encode(&sent).unwrap();
        let status = tonic::Status::with_details(tonic::Code::Unavailable, "x", details);
        assert!(matches!(received(status), RpcError::Remote(r) if r == sent));
    }

    #[test]
    fn remote_errors_read_the_previous_builds_and_are_read_by_it() {
        /// `RemoteError` as the build before this one defined it.
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Previous {
            sqlstate: String,
            message: String,
            #[serde(default)]
            retryable: bool,
            #[serde(default)]
            leader: Option<String>,
        }
        let old = encode(&Previous {
            sqlstate: "22007".into(),
            message: "invalid timestamp".into(),
            retryable: false,
            leader: None,
        })
        .unwrap();
        let read: RemoteError = decode(&old).unwrap();
        assert_eq!(
            read,
            RemoteError::new(SqlState::INVALID_DATETIME_FORMAT, "invalid timestamp")
        );
        // Before `retryable` and `leader` existed.
        let oldest = br#"{"v":1,"body":{"sqlstate":"40001","message":"conflict"}}"#;
        let read: RemoteError = decode(oldest).unwrap();
        assert_eq!(read.sqlstate, SqlState::SERIALIZATION_FAILURE);
        let mut new = RemoteError::retryable(SqlState::CANNOT_CONNECT_NOW, "not the leader");
        new.leader = Some("127.0.0.1:9".into());
        let read: Previous = decode(&encode(&new).unwrap()).unwrap();
        assert_eq!(read.sqlstate, "57P03");
        assert!(read.retryable);
        assert_eq!(read.leader.as_deref(), Some("127.0.0.1:9"));
    }
}
