//! What a data node asks the other data nodes for while it runs a statement: a scan fragment
//! of the partitions they own (`do_get` of a [`ScanRequest`]: the projection, filters and
//! limit pushed down, Arrow batches streamed back, wrapped as a DataFusion plan node), and
//! their share of an UPDATE or DELETE ([`RewriteRequest`], `q.rewrite`). The other side is
//! [`super::service`].

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use datafusion_proto::bytes::Serializeable;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::datanode::{DataNode, TableAt};
use crate::rpc::client::Peers;
use crate::rpc::{encode_ticket, RpcError};

/// A remote owner's share of an UPDATE or DELETE.
pub const REWRITE: &str = "q.rewrite";

/// How long a DML share may run on a remote owner.
const REWRITE_TIMEOUT: Duration = Duration::from_secs(600);

/// A scan fragment (the `do_get` ticket).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScanRequest {
    pub at: TableAt,
    pub projection: Option<Vec<usize>>,
    /// datafusion-proto encoded filters over logical column names.
    pub filters: Vec<Vec<u8>>,
    pub limit: Option<usize>,
}

/// The `do_get` ticket kind of a scan fragment ([`ScanRequest`]).
pub const SCAN: &str = "Scan";

/// A remote owner's share of a DML statement.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RewriteRequest {
    pub tid: u64,
    pub at: TableAt,
    pub filters: Vec<Vec<u8>>,
    /// `None` for DELETE; column and encoded value for UPDATE.
    pub update: Option<Vec<(String, Vec<u8>)>>,
}

/// Encodes scan filters, leaving out those that cannot be encoded (e.g. calls of
/// session-local functions).
pub fn encode_exprs(filters: &[Expr]) -> Vec<Vec<u8>> {
    filters
        .iter()
        .filter_map(|f| f.to_bytes().ok().map(|b| b.to_vec()))
        .collect()
}

/// A plan node streaming a scan fragment from another data node.
pub fn remote_scan(
    peers: Arc<Peers>,
    addr: String,
    request: ScanRequest,
    schema: SchemaRef,
) -> Result<Arc<dyn ExecutionPlan>> {
    super::executor::single_stream_plan(Arc::new(RemoteScan {
        peers,
        addr,
        request,
        schema,
    }))
}

struct RemoteScan {
    peers: Arc<Peers>,
    addr: String,
    request: ScanRequest,
    schema: SchemaRef,
}

impl std::fmt::Debug for RemoteScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteScan({})", self.addr)
    }
}

impl PartitionStream for RemoteScan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (peers, addr, schema) = (self.peers.clone(), self.addr.clone(), self.schema.clone());
        let ticket = encode_ticket(SCAN, &self.request);
        let out_schema = schema.clone();
        let stream = futures::stream::once(async move {
            let ticket = ticket.map_err(external)?;
            let stream = peers.get(&addr, ticket).await.map_err(external)?;
            let addr2 = addr.clone();
            Ok::<_, DataFusionError>(stream.map(move |b| {
                let b =
                    b.map_err(|e| external(crate::rpc::client::flight_error(&addr2, "do_get", e)))?;
                // The same columns; take this side's field names and nullability.
                let options = RecordBatchOptions::new().with_row_count(Some(b.num_rows()));
                Ok(RecordBatch::try_new_with_options(
                    schema.clone(),
                    b.columns().to_vec(),
                    &options,
                )?)
            }))
        })
        .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(out_schema, stream))
    }
}

fn external(e: RpcError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Sends a DML share to a remote owner; returns how many rows it changed.
pub async fn call_rewrite(node: &DataNode, addr: &str, req: &RewriteRequest) -> Result<u64> {
    node.peers()
        .call(addr, REWRITE, req, REWRITE_TIMEOUT)
        .await
        .map_err(external)
}
