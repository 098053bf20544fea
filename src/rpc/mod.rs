//! Node-to-node transport: Arrow Flight over gRPC, on the same port as pgwire and HTTP.
//!
//! - Control calls (raft messages, controller writes and metadata watches, transaction steps)
//!   are Flight `do_action`s whose type names the call (`raft.append`, `ctl.write`, ...) and
//!   whose body is a JSON [`Envelope`]; the answer is one Flight result holding an envelope of
//!   `Result<T, RemoteError>`.
//! - Row data travels as Arrow IPC in Flight `do_get` (scans) and `do_put` (rows sent to the
//!   data node that owns their partition).
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

/// The SQLSTATEs a remote node may report, as static strings (errors keep `&'static str`
/// codes); an unknown code becomes XX000.
pub fn static_sqlstate(code: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "08006", "08P01", "0A000", "25006", "22003", "22012", "22023", "22P02", "23502", "23514",
        "25P02", "2BP01", "3F000", "40001", "42501", "42601", "42701", "42703", "42704", "42710",
        "42804", "42809", "42883", "42P01", "42P06", "42P07", "42P16", "53100", "53200", "55000",
        "57P01", "57P03", "58030", "58P01", "72000", "F0000", "XX001",
    ];
    KNOWN
        .iter()
        .find(|k| **k == code)
        .copied()
        .unwrap_or("XX000")
}

/// An error reported by the remote node, with what the caller needs to act on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub sqlstate: String,
    pub message: String,
    #[serde(default)]
    pub retryable: bool,
    /// Set when the remote controller is not the leader and knows who is (`host:port`).
    #[serde(default)]
    pub leader: Option<String>,
}

impl RemoteError {
    pub fn new(sqlstate: &str, message: impl Into<String>) -> Self {
        RemoteError {
            sqlstate: sqlstate.to_string(),
            message: message.into(),
            retryable: false,
            leader: None,
        }
    }

    /// An error after which the same call may succeed later (or on another node).
    pub fn retryable(sqlstate: &str, message: impl Into<String>) -> Self {
        RemoteError {
            retryable: true,
            ..Self::new(sqlstate, message)
        }
    }
}

/// Why a call to another node failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("invalid node address {addr}")]
    Address { addr: String },
    #[error("node {addr} is unreachable ({})", status.message())]
    Unreachable {
        addr: String,
        status: Box<tonic::Status>,
    },
    #[error("node {addr} did not answer {call} within {ms} ms")]
    Timeout { addr: String, call: String, ms: u64 },
    #[error("node {addr} failed {call}: {}", status.message())]
    Status {
        addr: String,
        call: String,
        status: Box<tonic::Status>,
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

impl RpcError {
    /// The PostgreSQL SQLSTATE a client sees for this error.
    pub fn sqlstate(&self) -> &str {
        match self {
            // connection_failure
            RpcError::Unreachable { .. } | RpcError::Timeout { .. } | RpcError::Status { .. } => {
                "08006"
            }
            // protocol_violation
            RpcError::Decode { .. }
            | RpcError::Version { .. }
            | RpcError::Empty { .. }
            | RpcError::Ticket => "08P01",
            RpcError::Address { .. } => "F0000",
            RpcError::Encode { .. } => "XX000",
            RpcError::Remote(e) => &e.sqlstate,
        }
    }

    /// Whether the call may succeed if retried (possibly on another node).
    pub fn retryable(&self) -> bool {
        match self {
            RpcError::Unreachable { .. } | RpcError::Timeout { .. } | RpcError::Status { .. } => {
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
}
