//! What a data node answers other data nodes over Arrow Flight ([`crate::rpc`]):
//! - `do_get` of a [`ScanRequest`]: a fragment of a scan another node coordinates; this node
//!   scans its own partitions with the projection and filters pushed down and streams the
//!   Arrow batches back;
//! - `do_put` with a [`StageRequest`] descriptor: rows of a transaction for the partitions
//!   this node owns (routed again here, with the same partition domains);
//! - `q.rewrite` ([`RewriteRequest`]): this node's share of an UPDATE or DELETE;
//! - `do_get` of a [`CallRequest`]: another node's `rpc(thisNode, 'function', args...)`; this
//!   node runs the built-in function as the calling user and streams its result;
//! - `dn.prepare`, `dn.publish`, `dn.abort`: the participant steps of a transaction, and
//!   `dn.adopt`: stage data files fetched from another cluster's data node (a replicated
//!   APPEND taken as the master's files).
//!
//! The master and slave sides of replication serve their own calls on the same node
//! ([`crate::replication::master::serve`], [`crate::replication::slave::apply`]).
//!
//! Filters and assignments travel as DataFusion logical expressions in datafusion-proto's
//! encoding. A scan filter this node cannot decode is dropped (scan filters are inexact: the
//! coordinator applies them again); a DML filter it cannot decode fails the statement.

use std::sync::Arc;

use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use async_trait::async_trait;
use bytes::Bytes;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;
use datafusion_proto::bytes::Serializeable;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tonic::{Status, Streaming};

use super::functions::{CallRequest, CALL};
use super::remote::{RewriteRequest, ScanRequest, REWRITE, SCAN};
use super::table::{PorpoiseTable, RewriteOp};
use super::Engine;
use crate::catalog::scheme::route;
use crate::catalog::{DatabaseDef, NewValuePolicy, DIMENSION_PARTITION};
use crate::datanode::{
    AdoptRequest, DataNode, DataNodeError, StageRequest, StagedCounts, TableAt, TidRequest, ABORT,
    ADOPT, PREPARE, PUBLISH,
};
use crate::rpc::server::{
    reply, stream_error, stream_status, to_status, Caller, FlightStream, Service,
};
use crate::rpc::{decode, decode_ticket, RemoteError, RpcError};
use crate::sqlstate::SqlState;

/// Liveness probe of a data node: answers [`PingReply`].
pub const PING: &str = "dn.ping";

/// The answer to [`PING`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PingReply {
    pub id: u64,
    /// The applied index of this node's metadata. Serialised as `metadata_version`, the name
    /// older nodes send and expect.
    #[serde(rename = "metadata_version")]
    pub applied_index: u64,
}

/// The data role of a node.
pub struct DataService {
    engine: Arc<Engine>,
}

impl DataService {
    pub fn new(engine: Arc<Engine>) -> Self {
        DataService { engine }
    }

    fn node(&self) -> &Arc<DataNode> {
        self.engine.node()
    }

    fn state(&self) -> SessionState {
        self.engine.base_state()
    }

    /// This node's table once its metadata has applied what the coordinator's had, if unchanged
    /// since.
    async fn table(&self, at: &TableAt) -> std::result::Result<PorpoiseTable, RemoteError> {
        let metadata = self
            .node()
            .wait_applied(at.min_applied_index)
            .await
            .map_err(node_err)?;
        match metadata.table(&at.db, &at.table) {
            Some((_, def)) if def.id == at.table_id && def.generation == at.generation => Ok(
                PorpoiseTable::local(at.db.clone(), def.clone(), self.node().clone()),
            ),
            _ => Err(RemoteError::retryable(
                SqlState::SERIALIZATION_FAILURE,
                format!(
                    "table \"{}\" of \"{}\" was changed by a concurrent statement; retry",
                    at.table, at.db
                ),
            )),
        }
    }

    async fn scan(&self, req: ScanRequest) -> std::result::Result<FlightStream, RemoteError> {
        let table = self
            .table(&req.at)
            .await?
            .at_index(req.at.min_applied_index);
        let state = self.state();
        let ctx = state.task_ctx();
        let filters: Vec<Expr> = req
            .filters
            .iter()
            .filter_map(|f| Expr::from_bytes_with_ctx(f, &ctx).ok())
            .collect();
        let plan = table
            .scan(&state, req.projection.as_ref(), &filters, req.limit)
            .await
            .map_err(df_err)?;
        let schema = plan.schema();
        let stream = super::executor::execute_plan(plan, ctx).map_err(df_err)?;
        // An error in the middle of the scan ends the stream with a status carrying its code,
        // message and retryability, like an error before the stream starts.
        let data = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(stream.map_err(|e| stream_error(&e)))
            .map_err(stream_status);
        Ok(data.boxed())
    }

    /// Runs a built-in function for another node's `rpc`; streams its result.
    async fn call(&self, req: CallRequest) -> std::result::Result<FlightStream, RemoteError> {
        let batch = super::functions::serve_call(&self.engine, req).await?;
        let data = FlightDataEncoderBuilder::new()
            .with_schema(batch.schema())
            .build(futures::stream::iter([Ok(batch)]))
            .map_err(stream_status);
        Ok(data.boxed())
    }

    async fn stage(
        &self,
        data: Streaming<FlightData>,
    ) -> std::result::Result<StagedCounts, RemoteError> {
        let mut decoder = FlightDataDecoder::new(data.map_err(|s| FlightError::Tonic(Box::new(s))));
        // Set by the first message: the request, its staging, the table and its partition
        // columns (looked up once, not per batch).
        let mut target = None;
        while let Some(msg) = decoder.next().await {
            let msg =
                msg.map_err(|e| RemoteError::new(SqlState::PROTOCOL_VIOLATION, e.to_string()))?;
            if target.is_none() {
                if let Some(d) = &msg.inner.flight_descriptor {
                    let r: StageRequest = decode(&d.cmd).map_err(bad)?;
                    let table = self.table(&r.at).await?;
                    let staging = self.node().remote_staging(r.tid, &table.def);
                    let columns = table.def.partition_column_indices();
                    target = Some((r, staging, table.def, columns));
                }
            }
            let DecodedPayload::RecordBatch(batch) = msg.payload else {
                continue;
            };
            let Some((r, staging, def, columns)) = &target else {
                return Err(RemoteError::new(
                    SqlState::PROTOCOL_VIOLATION,
                    "rows before the stage request",
                ));
            };
            let mut staging = staging.lock().await;
            if def.is_dimension() {
                staging
                    .add(DIMENSION_PARTITION.to_string(), batch)
                    .await
                    .map_err(node_err)?;
                continue;
            }
            let metadata = self.node().controller().metadata();
            let db = metadata.database(&r.at.db).ok_or_else(|| {
                RemoteError::new(
                    SqlState::INVALID_SCHEMA_NAME,
                    format!("database \"{}\" does not exist", r.at.db),
                )
            })?;
            let routing = route(
                &db.def.levels,
                columns,
                &def.partition_columns,
                &batch,
                NewValuePolicy::Fail,
            )
            .map_err(|e| node_err(e.into()))?;
            for part in routing.parts {
                self.owned(&db.def, &part.partition)?;
                staging
                    .add(part.partition, part.batch)
                    .await
                    .map_err(node_err)?;
            }
        }
        match target {
            Some((_, s, _, _)) => Ok(s.lock().await.counts()),
            None => Ok(StagedCounts::default()),
        }
    }

    /// Refuses rows or files of a partition another data node owns (the coordinator routed
    /// them by metadata this node does not share).
    fn owned(&self, db: &DatabaseDef, partition: &str) -> std::result::Result<(), RemoteError> {
        if db.owner(partition).is_some_and(|o| o != self.node().id) {
            return Err(node_err(DataNodeError::Misrouted {
                db: db.name.clone(),
                partition: partition.to_string(),
            }));
        }
        Ok(())
    }

    /// `dn.adopt`: stages data files of another cluster, fetched from its data node.
    async fn adopt(&self, req: AdoptRequest) -> std::result::Result<StagedCounts, RemoteError> {
        let table = self.table(&req.at).await?;
        let metadata = self.node().controller().metadata();
        let db = metadata.database(&req.at.db).ok_or_else(|| {
            RemoteError::new(
                SqlState::INVALID_SCHEMA_NAME,
                format!("database \"{}\" does not exist", req.at.db),
            )
        })?;
        for f in &req.files {
            self.owned(&db.def, &f.partition)?;
        }
        let staging = self.node().remote_staging(req.tid, &table.def);
        let mut staging = staging.lock().await;
        if req.clear {
            staging.clear_table(req.only.as_ref()).map_err(node_err)?;
        }
        for f in req.files {
            staging
                .adopt(req.src.clone(), f, req.seed)
                .await
                .map_err(node_err)?;
        }
        Ok(staging.counts())
    }

    async fn rewrite(&self, req: RewriteRequest) -> std::result::Result<u64, RemoteError> {
        let table = self.table(&req.at).await?;
        let state = self.state();
        let (filters, op) =
            decode_rewrite(&state, &req.filters, req.update.as_deref()).map_err(df_err)?;
        let staging = self.node().remote_staging(req.tid, &table.def);
        let mut staging = staging.lock().await;
        staging.count_rewrite();
        table
            .rewrite_local(&state, &filters, &op, &mut *staging)
            .await
            .map_err(df_err)
    }
}

/// A DML statement's filters and assignments from their encoding.
pub fn decode_rewrite(
    state: &SessionState,
    filters: &[Vec<u8>],
    update: Option<&[(String, Vec<u8>)]>,
) -> Result<(Vec<Expr>, RewriteOp)> {
    let ctx = state.task_ctx();
    let expr = |b: &Vec<u8>| Expr::from_bytes_with_ctx(b, &ctx);
    let filters = filters.iter().map(expr).collect::<Result<Vec<_>>>()?;
    let op = match update {
        None => RewriteOp::Delete,
        Some(a) => RewriteOp::Update(
            a.iter()
                .map(|(n, e)| Ok((n.clone(), expr(e)?)))
                .collect::<Result<_>>()?,
        ),
    };
    Ok((filters, op))
}

use arrow_flight::FlightData;

fn bad(e: RpcError) -> RemoteError {
    RemoteError::new(
        SqlState::PROTOCOL_VIOLATION,
        format!("malformed request: {e}"),
    )
}

fn node_err(e: DataNodeError) -> RemoteError {
    RemoteError::from_error(&e)
}

fn df_err(e: DataFusionError) -> RemoteError {
    RemoteError::from_error(&e)
}

#[async_trait]
impl Service for DataService {
    fn handles(&self, call: &str) -> bool {
        matches!(call, PREPARE | PUBLISH | ABORT | PING | ADOPT | REWRITE)
    }

    async fn action(&self, _caller: &Caller, call: &str, body: Bytes) -> Bytes {
        match call {
            PREPARE | PUBLISH | ABORT => {
                let req: TidRequest = match decode(&body) {
                    Ok(r) => r,
                    Err(e) => return reply::<()>(Err(bad(e))),
                };
                match call {
                    PREPARE => reply(self.node().prepare_remote(req.tid).await.map_err(node_err)),
                    PUBLISH => reply(
                        self.node()
                            .publish_prepared(req.tid, req.commit_index)
                            .await
                            .map_err(node_err),
                    ),
                    _ => reply(self.node().abort_remote(req.tid).map_err(node_err)),
                }
            }
            PING => reply(Ok(PingReply {
                id: self.node().id,
                applied_index: self.node().controller().metadata().applied_index(),
            })),
            ADOPT => match decode::<AdoptRequest>(&body) {
                Ok(req) => reply(self.adopt(req).await),
                Err(e) => reply::<()>(Err(bad(e))),
            },
            REWRITE => match decode::<RewriteRequest>(&body) {
                Ok(req) => reply(self.rewrite(req).await),
                Err(e) => reply::<()>(Err(bad(e))),
            },
            other => reply::<()>(Err(RemoteError::new(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("unknown data node call {other}"),
            ))),
        }
    }

    fn handles_ticket(&self, kind: &str) -> bool {
        kind == SCAN || kind == CALL
    }

    fn handles_put(&self) -> bool {
        true
    }

    async fn get(
        &self,
        _caller: &Caller,
        kind: &str,
        ticket: Bytes,
    ) -> std::result::Result<FlightStream, Status> {
        let result = match kind {
            SCAN => match decode_ticket::<ScanRequest>(kind, &ticket) {
                Ok(req) => self.scan(req).await,
                Err(e) => Err(bad(e)),
            },
            _ => match decode_ticket::<CallRequest>(kind, &ticket) {
                Ok(req) => self.call(req).await,
                Err(e) => Err(bad(e)),
            },
        };
        result.map_err(to_status)
    }

    async fn put(
        &self,
        _caller: &Caller,
        data: Streaming<FlightData>,
    ) -> std::result::Result<Bytes, Status> {
        Ok(reply(self.stage(data).await))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::protocol::ApplyRequest;
    use crate::storage::file::FileRecord;

    /// Fields renamed to say which index they hold keep the names older nodes send and
    /// expect, and that the file index has always stored.
    #[test]
    fn indexes_keep_their_serialised_names() {
        let ping = serde_json::to_value(PingReply {
            id: 1,
            applied_index: 5,
        })
        .unwrap();
        assert_eq!(ping["metadata_version"], 5, "{ping}");
        let at = TableAt {
            db: "dfs://d".into(),
            table: "t".into(),
            table_id: 1,
            generation: 0,
            min_applied_index: 6,
        };
        let json = serde_json::to_value(&at).unwrap();
        assert_eq!(json["min_version"], 6, "{json}");
        let publish = TidRequest {
            tid: 3,
            commit_index: 7,
        };
        let json = serde_json::to_value(&publish).unwrap();
        assert_eq!(json["version"], 7, "{json}");
        let apply = ApplyRequest {
            tasks: Vec::new(),
            min_applied_index: 8,
        };
        let json = serde_json::to_value(&apply).unwrap();
        assert_eq!(json["min_version"], 8, "{json}");
        let record: FileRecord = serde_json::from_str(
            r#"{"name":"f","size":1,"rows":1,"tid":3,"stats":{},"version":9}"#,
        )
        .unwrap();
        assert_eq!(record.commit_index, 9);
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["version"], 9, "{json}");
    }
}
