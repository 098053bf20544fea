//! PostgreSQL's CancelRequest: psql sends it on Ctrl-C, drivers for a statement timeout. It
//! comes on a new connection and names the connection to interrupt by the process id and
//! secret key that connection got in its BackendKeyData.
//!
//! A cancel stops the rows of the query the connection is running (or planning): the result
//! ends with 57014 and the connection stays usable. A statement that writes (INSERT, UPDATE,
//! DELETE, COPY, DDL) runs to completion, as if the cancel had come after it, so that a write is
//! never cut halfway; a cancel when nothing runs does nothing, as in PostgreSQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::error::DataFusionError;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{PidSecretKeyGenerator, RandomPidSecretKeyGenerator};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use tokio::sync::watch;

use crate::query::QueryError;
use crate::sqlstate::SqlState;

/// The connections of one server that a CancelRequest can name.
#[derive(Default)]
pub struct CancelRegistry {
    connections: Mutex<HashMap<(i32, Bytes), Weak<Canceller>>>,
    /// Shared by all connections, so process ids are unique.
    keys: Arc<RandomPidSecretKeyGenerator>,
}

impl CancelRegistry {
    /// The generator of the process ids and secret keys the connections are told.
    pub fn keys(&self) -> Arc<dyn PidSecretKeyGenerator> {
        self.keys.clone()
    }

    /// Registers the connection told `pid` and `key`; it stays registered while the returned
    /// canceller lives.
    pub fn register(&self, pid: i32, key: &SecretKey) -> Arc<Canceller> {
        let canceller = Arc::new(Canceller {
            requests: watch::Sender::new(0),
        });
        let mut connections = crate::lock(&self.connections);
        connections.retain(|_, c| c.strong_count() > 0);
        connections.insert((pid, key.to_bytes()), Arc::downgrade(&canceller));
        canceller
    }

    fn cancel(&self, pid: i32, key: &SecretKey) -> bool {
        let connections = crate::lock(&self.connections);
        match connections
            .get(&(pid, key.to_bytes()))
            .and_then(Weak::upgrade)
        {
            Some(canceller) => {
                canceller.requests.send_modify(|n| *n += 1);
                true
            }
            None => false,
        }
    }
}

#[async_trait]
impl CancelHandler for CancelRegistry {
    async fn on_cancel_request(&self, request: CancelRequest) {
        if !self.cancel(request.pid, &request.secret_key) {
            tracing::debug!(pid = request.pid, "cancel request for no connection");
        }
    }
}

/// One connection's cancel requests.
pub struct Canceller {
    /// Counts the requests; a statement watches for the next one.
    requests: watch::Sender<u64>,
}

impl Canceller {
    /// The cancel requests that come from now on: take it before a statement starts.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.requests.subscribe()
    }
}

/// `stream`, ended with 57014 by the first request `requests` sees.
pub fn cancellable(
    stream: SendableRecordBatchStream,
    requests: watch::Receiver<u64>,
) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let batches = futures::stream::unfold(Some((stream, requests)), |state| async move {
        let (mut stream, mut requests) = state?;
        tokio::select! {
            biased;
            Ok(()) = requests.changed() => {
                let canceled = QueryError::other(SqlState::QUERY_CANCELED, "canceling statement due to user request");
                // Dropping the stream stops the query's execution.
                drop(stream);
                Some((Err(DataFusionError::External(Box::new(canceled))), None))
            }
            batch = stream.next() => batch.map(|b| (b, Some((stream, requests)))),
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, batches))
}
