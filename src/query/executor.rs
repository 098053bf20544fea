//! Query execution off the runtime that serves the network: DataFusion's CPU-heavy work
//! (decoding Parquet, filtering, aggregating) runs on a runtime of its own, so a heavy query
//! never delays raft messages, controller calls, pgwire I/O or Arrow Flight traffic on the
//! main runtime.
//!
//! [`execute`] builds and polls the physical plan on the query runtime and hands its batches
//! to the caller through a small bounded channel (backpressure: a slow client slows the
//! query, nothing piles up in memory).

use std::sync::OnceLock;

use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use futures::StreamExt;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Batches in flight between the query runtime and the consumer.
const CHANNEL_BATCHES: usize = 2;

/// The query runtime (created on first use; one per process).
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_name("porpoise-query")
                .thread_stack_size(super::parse_budget::THREAD_STACK_SIZE)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| DataFusionError::Execution(format!("cannot start the query runtime: {e}")))
}

/// Executes a planned query on the query runtime; its batches arrive on the returned stream,
/// whose schema is the executed plan's (after type coercion, which the DataFrame's own schema
/// may predate).
pub async fn execute(df: DataFrame) -> Result<SendableRecordBatchStream> {
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    runtime()?.spawn(async move {
        let stream = match df.execute_stream().await {
            Ok(s) => {
                let _ = ready_tx.send(Ok(s.schema()));
                s
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        pump(stream, tx).await;
    });
    let schema = ready_rx
        .await
        .map_err(|_| DataFusionError::Execution("the query runtime dropped a query".into()))??;
    Ok(receiver_stream(schema, rx))
}

/// A plan node of one partition that `stream` produces when the plan executes.
pub fn single_stream_plan(stream: Arc<dyn PartitionStream>) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = stream.schema().clone();
    Ok(Arc::new(StreamingTableExec::try_new(
        schema,
        vec![stream],
        None,
        Vec::new(),
        false,
        None,
    )?))
}

/// Executes a physical plan (all partitions, merged) on the query runtime.
pub fn execute_plan(
    plan: Arc<dyn ExecutionPlan>,
    ctx: Arc<datafusion::execution::TaskContext>,
) -> Result<SendableRecordBatchStream> {
    let schema = plan.schema();
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    runtime()?.spawn(async move {
        match datafusion::physical_plan::execute_stream(plan, ctx) {
            Ok(stream) => pump(stream, tx).await,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
            }
        }
    });
    Ok(receiver_stream(schema, rx))
}

/// Moves batches to the consumer until the stream ends or the consumer goes away (a cancelled
/// query, a dropped connection), which drops the stream and so stops the query: also while it
/// works towards its first batch.
async fn pump(
    mut stream: SendableRecordBatchStream,
    tx: mpsc::Sender<Result<arrow::array::RecordBatch>>,
) {
    loop {
        let batch = tokio::select! {
            () = tx.closed() => return,
            batch = stream.next() => batch,
        };
        let Some(batch) = batch else { return };
        if tx.send(batch).await.is_err() {
            return;
        }
    }
}

fn receiver_stream(
    schema: arrow::datatypes::SchemaRef,
    rx: mpsc::Receiver<Result<arrow::array::RecordBatch>>,
) -> SendableRecordBatchStream {
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        ReceiverStream::new(rx),
    ))
}
