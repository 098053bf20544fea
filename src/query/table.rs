//! A partitioned table as DataFusion sees it.
//!
//! Scans read the table at one point (the applied index of the coordinator's metadata, sent to every
//! fragment: [`DataNode::snapshot_at`]), so a query sees a transaction on every node or on none;
//! they skip files whose recorded
//! statistics cannot match the filters (this is the partition pruning: a partition column's
//! min/max is the partition's key range), and read the rest with DataFusion's Parquet source,
//! which prunes row groups with the same filters. Files store columns by physical name
//! (`c<id>`); a projection on top gives them their current logical names.
//!
//! INSERT, UPDATE and DELETE are planned by DataFusion and executed here as one write
//! transaction each ([`crate::datanode::WriteTxn`]), or inside a transaction block in the
//! block's transaction ([`super::block`]).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use arrow::compute::{cast, filter_record_batch, kernels::zip::zip, not, prep_null_mask_filter};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column as PhysicalColumn;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;

use super::block::{self, txn_for, BlockWrites, Held, WriteKind};
use crate::catalog::TableDef;
use crate::controller::metadata::TxnState;
use crate::datanode::{DataNode, DataNodeError};
use crate::replication::model::{Applies, OpType};
use crate::storage::{DataFileRef, StorageError};

/// A filter compiled for evaluation.
type Predicate = Arc<dyn PhysicalExpr>;

/// The files of a statement's target partitions.
type FilesByPartition = HashMap<String, Vec<DataFileRef>>;

/// How long a DML statement waits for another one replacing the same files before it fails
/// with a serialization failure (40001).
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How often a waiting DML statement looks again without being woken.
const CLAIM_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// A table of a database, bound to the data node that stores it.
#[derive(Debug)]
pub struct PorpoiseTable {
    pub db: String,
    pub def: TableDef,
    node: Arc<DataNode>,
    schema: SchemaRef,
    /// Scan only this node's partitions (a fragment of a scan another node coordinates).
    local_only: bool,
    /// The applied index scans read at (a fragment's is its coordinator's); by default the
    /// applied index of this node's metadata when the scan is planned.
    read_at: Option<u64>,
}

/// How a DML statement changes the rows it matches.
#[derive(Clone, Debug)]
pub enum RewriteOp {
    Delete,
    /// Column name and new value.
    Update(Vec<(String, Expr)>),
}

/// Turns a batch (logical schema) and the mask of its matching rows into the batch to keep and
/// how many rows changed.
type ChangeFn =
    Box<dyn Fn(&RecordBatch, &BooleanArray) -> Result<(Option<RecordBatch>, u64)> + Send + Sync>;

impl PorpoiseTable {
    pub fn new(db: String, def: TableDef, node: Arc<DataNode>) -> Self {
        let schema = def.logical_schema();
        PorpoiseTable {
            db,
            def,
            node,
            schema,
            local_only: false,
            read_at: None,
        }
    }

    /// This table as seen at applied index `at` (see [`DataNode::snapshot_at`]).
    pub fn at_index(self, at: u64) -> Self {
        PorpoiseTable {
            read_at: Some(at),
            ..self
        }
    }

    /// The part of the table stored on this node.
    pub fn local(db: String, def: TableDef, node: Arc<DataNode>) -> Self {
        PorpoiseTable {
            local_only: true,
            ..Self::new(db, def, node)
        }
    }

    /// The other data nodes holding partitions of the table (none in a standalone server, or
    /// for a scan fragment).
    fn remote_nodes(&self) -> Vec<(crate::catalog::NodeId, String)> {
        if self.local_only {
            return Vec::new();
        }
        let metadata = self.node.controller().metadata();
        let Some(db) = metadata.database(&self.db) else {
            return Vec::new();
        };
        db.def
            .placement
            .iter()
            .filter(|id| **id != self.node.id)
            .filter_map(|id| metadata.node(*id).map(|n| (*id, n.addr.clone())))
            .collect()
    }

    fn physical_name(&self, logical: &str) -> Option<String> {
        self.def.column(logical).map(|c| c.physical_name())
    }

    /// Rewrites filters over logical names to physical names; `None` if a filter names a
    /// column the table does not have.
    fn to_physical(&self, expr: &Expr) -> Option<Expr> {
        let mut ok = true;
        let out = expr
            .clone()
            .transform(|e| match &e {
                Expr::Column(c) => match self.physical_name(&c.name) {
                    Some(p) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(p)))),
                    None => {
                        ok = false;
                        Ok(Transformed::no(e))
                    }
                },
                _ => Ok(Transformed::no(e)),
            })
            .ok()?
            .data;
        ok.then_some(out)
    }

    /// The files among `files` that may hold rows matching `filters`.
    fn pruned_files(
        &self,
        state: &dyn Session,
        files: Vec<DataFileRef>,
        filters: &[Expr],
    ) -> Result<(Vec<DataFileRef>, Option<Predicate>)> {
        let physical_schema = self.def.physical_schema();
        let physical_filters: Vec<Expr> =
            filters.iter().filter_map(|f| self.to_physical(f)).collect();
        let Some(predicate) = conjunction(physical_filters) else {
            return Ok((files, None));
        };
        let df_schema = DFSchema::try_from(physical_schema.as_ref().clone())?;
        let predicate = state.create_physical_expr(predicate, &df_schema)?;
        let pruning = PruningPredicateBuilder::new()
            .with_file_schema(physical_schema.clone())
            .build(predicate.clone());
        // Without a usable pruning predicate every file is read; the filter still applies.
        let files = match pruning {
            Some(pruning) => {
                let stats = FileStatistics {
                    files: &files,
                    schema: &physical_schema,
                };
                let keep = pruning.prune(&stats)?;
                files
                    .iter()
                    .zip(keep)
                    .filter(|(_, k)| *k)
                    .map(|(f, _)| f.clone())
                    .collect()
            }
            None => files,
        };
        Ok((files, Some(predicate)))
    }

    /// A Parquet scan of `files`, producing the logical schema (projected).
    fn scan_files(
        &self,
        state: &dyn Session,
        files: Vec<DataFileRef>,
        predicate: Option<Arc<dyn PhysicalExpr>>,
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Declared nullability: the union with other nodes' scans, and the plans above it,
        // must see the table's NOT NULL columns as NOT NULL.
        let physical_schema = self.def.scan_schema();
        let indices: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        if files.is_empty() {
            // A scan over no files would report zero output partitions, which plans above it
            // (sorts, single-partition requirements) cannot take.
            let schema = Arc::new(self.schema.project(&indices)?);
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let mut source = ParquetSource::new(physical_schema.clone());
        if let Some(p) = predicate {
            source = source.with_predicate(p);
        }
        let groups = state.config().target_partitions().max(1);
        let mut file_groups: Vec<Vec<PartitionedFile>> =
            vec![Vec::new(); groups.min(files.len().max(1))];
        let slots = file_groups.len();
        for (i, f) in files.into_iter().enumerate() {
            let location = datafusion::object_store::path::Path::from_filesystem_path(&f.path)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let pf = PartitionedFile::new(location.to_string(), f.record.size).with_extension(f);
            file_groups[i % slots].push(pf);
        }
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                .with_file_groups(
                    file_groups
                        .into_iter()
                        .filter(|g| !g.is_empty())
                        .map(FileGroup::new)
                        .collect(),
                )
                .with_projection_indices(Some(indices.clone()))?
                .with_limit(limit)
                .build();
        let scan: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
        let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = indices
            .iter()
            .enumerate()
            .map(|(out, &i)| {
                let physical = physical_schema.field(i).name().clone();
                (
                    Arc::new(PhysicalColumn::new(&physical, out)) as Arc<dyn PhysicalExpr>,
                    self.schema.field(i).name().clone(),
                )
            })
            .collect();
        Ok(Arc::new(ProjectionExec::try_new(exprs, scan)?))
    }

    /// Runs `work` when the plan executes (not when it is planned, so EXPLAIN writes nothing)
    /// and returns its row count as DataFusion's DML result.
    fn write_plan<F, Fut>(&self, work: F) -> Result<Arc<dyn ExecutionPlan>>
    where
        F: FnOnce(Arc<TaskContext>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<u64>> + Send + 'static,
    {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "count",
            DataType::UInt64,
            false,
        )]));
        super::executor::single_stream_plan(Arc::new(OnceWrite {
            schema,
            work: std::sync::Mutex::new(Some(Box::new(move |ctx| Box::pin(work(ctx))))),
        }))
    }

    /// Rewrites every partition with rows matching `filters`: `change` gets a batch (logical
    /// schema) and the mask of matching rows, and returns the batch to keep and how many rows
    /// it changed.
    pub async fn rewrite(
        def: &TableDef,
        files_by_partition: HashMap<String, Vec<DataFileRef>>,
        predicate: Option<Arc<dyn PhysicalExpr>>,
        change: &ChangeFn,
        txn: &mut dyn RewriteTarget,
    ) -> Result<u64> {
        let logical = def.logical_schema();
        let physical = def.physical_schema();
        let mut changed = 0;
        for (partition, files) in files_by_partition {
            let mut keep = Vec::new();
            let mut partition_changed = 0;
            for f in &files {
                let batches = tokio::task::spawn_blocking({
                    let path = f.path.clone();
                    let physical = physical.clone();
                    move || crate::datanode::read_as(&path, &physical)
                })
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .map_err(|e| ext(e.into()))?;
                for b in batches {
                    let b = RecordBatch::try_new(logical.clone(), b.columns().to_vec())?;
                    let mask = match &predicate {
                        Some(p) => {
                            let v = p.evaluate(&b)?.into_array(b.num_rows())?;
                            let m = v
                                .as_any()
                                .downcast_ref::<BooleanArray>()
                                .cloned()
                                .ok_or_else(|| {
                                    DataFusionError::Plan("WHERE clause must be boolean".into())
                                })?;
                            if m.null_count() > 0 {
                                prep_null_mask_filter(&m)
                            } else {
                                m
                            }
                        }
                        None => BooleanArray::from(vec![true; b.num_rows()]),
                    };
                    let (kept, n) = change(&b, &mask)?;
                    partition_changed += n;
                    keep.extend(kept);
                }
            }
            if partition_changed > 0 {
                changed += partition_changed;
                txn.rewrite(&partition, &files, keep).await.map_err(ext)?;
            }
        }
        Ok(changed)
    }

    /// The change function of a DML statement over this table.
    pub fn change_fn(&self, state: &dyn Session, op: &RewriteOp) -> Result<ChangeFn> {
        let assignments = match op {
            RewriteOp::Delete => {
                return Ok(Box::new(|b: &RecordBatch, mask: &BooleanArray| {
                    let n = mask.true_count() as u64;
                    if n == 0 {
                        return Ok((Some(b.clone()), 0));
                    }
                    let kept = filter_record_batch(b, &not(mask)?)?;
                    Ok(((kept.num_rows() > 0).then_some(kept), n))
                }))
            }
            RewriteOp::Update(a) => a,
        };
        let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
        let mut setters: Vec<(usize, Arc<dyn PhysicalExpr>)> = Vec::new();
        for (name, expr) in assignments {
            let index = self
                .schema
                .index_of(name)
                .map_err(|_| DataFusionError::Plan(format!("column \"{name}\" does not exist")))?;
            if self.def.partition_columns.contains(name) {
                return Err(DataFusionError::Plan(format!(
                    "cannot update partition column \"{name}\""
                )));
            }
            setters.push((index, state.create_physical_expr(expr.clone(), &df_schema)?));
        }
        let schema = self.schema.clone();
        Ok(Box::new(move |b: &RecordBatch, mask: &BooleanArray| {
            let n = mask.true_count() as u64;
            if n == 0 {
                return Ok((Some(b.clone()), 0));
            }
            let mut columns: Vec<ArrayRef> = b.columns().to_vec();
            for (index, expr) in &setters {
                let value = expr.evaluate(b)?.into_array(b.num_rows())?;
                let value = cast(&value, schema.field(*index).data_type())?;
                columns[*index] = zip(mask, &value, &columns[*index])?;
            }
            Ok((Some(RecordBatch::try_new(schema.clone(), columns)?), n))
        }))
    }

    /// Runs a DML statement's change on this node's partitions, into `txn`.
    ///
    /// Files another unfinished statement is replacing (claimed) are not read until it ends;
    /// then they are read anew, so the statement applies to the rows as the other one left
    /// them. Waits follow wait-die, so two statements never wait for each other across nodes:
    /// an older transaction (smaller tid) waits for a younger one (at most [`CLAIM_WAIT`]), a
    /// younger one fails at once with 40001, unless the holder has committed already.
    pub async fn rewrite_local(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        op: &RewriteOp,
        txn: &mut dyn RewriteTarget,
    ) -> Result<u64> {
        let change = self.change_fn(state, op)?;
        let lock = self.node.rewrite_lock(self.def.id);
        let deadline = tokio::time::Instant::now() + CLAIM_WAIT;
        let (_guard, (targets, predicate)) = loop {
            let released = self.node.claims_released().notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let guard = lock.lock().await;
            // Under the lock nothing else replaces this table's files here.
            let targets = self.dml_targets(state, filters)?;
            let Some(holder) = self.node.claimed(targets.0.values().flatten()) else {
                break (guard, targets);
            };
            drop(guard);
            let committed = self
                .node
                .controller()
                .metadata()
                .txn(holder)
                .is_some_and(|t| t.state == TxnState::Committed);
            let now = tokio::time::Instant::now();
            if (holder < txn.tid() && !committed) || now >= deadline {
                return Err(ext(StorageError::Claimed { holder }.into()));
            }
            // Woken by the release; or look again soon, as a committed holder may be
            // published by the next look.
            let _ = tokio::time::timeout(CLAIM_POLL.min(deadline - now), released).await;
        };
        Self::rewrite(&self.def, targets, predicate, &change, txn).await
    }

    /// Plans a DML statement: one transaction changing every data node's partitions.
    fn dml_plan(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
        op: RewriteOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Check the statement here, so errors come at planning.
        let _checked = self.change_fn(state, &op)?;
        let table = PorpoiseTable::new(self.db.clone(), self.def.clone(), self.node.clone());
        let state = state
            .as_any()
            .downcast_ref::<datafusion::execution::SessionState>()
            .cloned();
        let state =
            state.ok_or_else(|| DataFusionError::Internal("unexpected session type".into()))?;
        self.write_plan(move |_| async move { table.run_dml(&state, &filters, &op, None).await })
    }

    /// Runs a DML statement as one transaction over every data node holding the table;
    /// returns how many rows it changed. `applies`: the slave task it applies (see
    /// [`crate::datanode::WriteTxn::applies_tasks`]).
    pub async fn run_dml(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        op: &RewriteOp,
        applies: Option<Applies>,
    ) -> Result<u64> {
        let request = remote_rewrite_request(&self.db, &self.def, filters, op)?;
        let local = PorpoiseTable::local(self.db.clone(), self.def.clone(), self.node.clone());
        let node = &self.node;
        let block = BlockWrites::of(state.config());
        let held = match &block {
            Some(b) => b
                .take(&self.db, &self.def.name, WriteKind::Rewrite)
                .map_err(query_ext)?,
            None => Held::Own,
        };
        let (txn, in_block) = match held {
            Held::Own => (node.begin(&self.db, &self.def.name).await, false),
            Held::Block(held) => (txn_for(node, held, &self.db, &self.def.name).await, true),
        };
        let mut txn = txn.map_err(ext)?;
        if let Some(applies) = applies {
            txn.applies_tasks(applies);
        }
        let replicated_op = match op {
            RewriteOp::Delete => OpType::SqlDelete,
            RewriteOp::Update(_) => OpType::SqlUpdate,
        };
        txn.replicate_rewrite(
            replicated_op,
            request.filters.clone(),
            request.update.clone(),
        );
        let mut changed = local.rewrite_local(state, filters, op, &mut txn).await?;
        for (id, _) in self.remote_nodes() {
            let addr = txn.remote_rewrite(id).map_err(ext)?;
            let mut req = request.clone();
            req.tid = txn.tid();
            req.at.min_applied_index = node.controller().metadata().applied_index();
            changed += super::remote::call_rewrite(node, &addr, &req).await?;
        }
        match block {
            Some(block) if in_block => block.put(txn),
            _ => {
                txn.commit().await.map_err(ext)?;
            }
        }
        Ok(changed)
    }

    /// The latest files grouped by partition, pruned by `filters`, plus the filter as one
    /// physical predicate over the logical schema.
    fn dml_targets(
        &self,
        state: &dyn Session,
        filters: &[Expr],
    ) -> Result<(FilesByPartition, Option<Predicate>)> {
        let latest = self
            .node
            .snapshot_latest((self.def.id, self.def.generation))
            .map_err(ext)?;
        let (files, _) = self.pruned_files(state, latest.files().cloned().collect(), filters)?;
        let mut by_partition: HashMap<String, Vec<DataFileRef>> = HashMap::new();
        for f in files {
            by_partition.entry(f.partition.clone()).or_default().push(f);
        }
        let predicate = match conjunction(filters.to_vec()) {
            Some(p) => {
                let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
                Some(state.create_physical_expr(p, &df_schema)?)
            }
            None => None,
        };
        Ok((by_partition, predicate))
    }
}

fn ext(e: DataNodeError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

fn query_ext(e: super::QueryError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[async_trait]
impl TableProvider for PorpoiseTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // One index for every fragment: the scan sees the same transactions on every node. On
        // a slave, a replicated database is read at its read point: a prefix of the master's
        // commit order.
        let read_at = match self.read_at {
            Some(at) => at,
            None => {
                let metadata = self.node.controller().metadata();
                let point = metadata.replication().read_index(&self.db);
                let point = point.map_err(|e| ext(DataNodeError::Metadata(e.into())))?;
                point.unwrap_or_else(|| metadata.applied_index())
            }
        };
        let files = self
            .node
            .snapshot_at((self.def.id, self.def.generation), read_at)
            .map_err(ext)?;
        let (files, predicate) = self.pruned_files(state, files, filters)?;
        let local = self.scan_files(state, files, predicate, projection, limit)?;
        let remote = self.remote_nodes();
        if remote.is_empty() {
            return Ok(local);
        }
        let indices: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&indices)?);
        let mut plans = vec![local];
        for (_, addr) in remote {
            let mut at = crate::datanode::TableAt::now(&self.node, &self.db, &self.def);
            at.min_applied_index = read_at;
            let request = super::remote::ScanRequest {
                at,
                projection: projection.cloned(),
                filters: super::remote::encode_exprs(filters),
                limit,
            };
            plans.push(super::remote::remote_scan(
                self.node.peers().clone(),
                addr,
                request,
                schema.clone(),
            )?);
        }
        Ok(datafusion::physical_plan::union::UnionExec::try_new(plans)?)
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{op} is not supported; use INSERT INTO"
            )));
        }
        let node = self.node.clone();
        let (db, table) = (self.db.clone(), self.def.name.clone());
        let schema = self.def.input_schema();
        let (table_id, generation) = (self.def.id, self.def.generation);
        self.write_plan(move |ctx| async move {
            let block = BlockWrites::of(ctx.session_config());
            let held = match &block {
                Some(b) => b.take(&db, &table, WriteKind::Append).map_err(query_ext)?,
                None => Held::Own,
            };
            let (txn, in_block) = match held {
                Held::Own => (node.begin(&db, &table).await, false),
                Held::Block(held) => (txn_for(&node, held, &db, &table).await, true),
            };
            let mut txn = txn.map_err(ext)?;
            if in_block && (txn.table().id != table_id || txn.table().generation != generation) {
                return Err(query_ext(block::changed_in_block(&db, &table)));
            }
            let before = txn.rows();
            let partitions = input.output_partitioning().partition_count();
            for p in 0..partitions {
                let mut stream = input.execute(p, ctx.clone())?;
                while let Some(batch) = stream.next().await {
                    let batch = conform(&batch?, &schema)?;
                    txn.append(batch).await.map_err(ext)?;
                }
            }
            match block {
                Some(block) if in_block => {
                    let rows = txn.rows() - before;
                    block.put(txn);
                    Ok(rows)
                }
                _ => txn.commit().await.map_err(ext),
            }
        })
    }

    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.dml_plan(state, filters, RewriteOp::Delete)
    }

    async fn update(
        &self,
        state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.dml_plan(state, filters, RewriteOp::Update(assignments))
    }
}

/// Where a partition rewrite goes: the coordinator's transaction, or a participant's
/// staging.
#[async_trait]
pub trait RewriteTarget: Send {
    /// The transaction's id.
    fn tid(&self) -> u64;

    async fn rewrite(
        &mut self,
        partition: &str,
        old: &[DataFileRef],
        rows: Vec<RecordBatch>,
    ) -> std::result::Result<(), DataNodeError>;
}

#[async_trait]
impl RewriteTarget for crate::datanode::WriteTxn {
    fn tid(&self) -> u64 {
        crate::datanode::WriteTxn::tid(self)
    }

    async fn rewrite(
        &mut self,
        partition: &str,
        old: &[DataFileRef],
        rows: Vec<RecordBatch>,
    ) -> std::result::Result<(), DataNodeError> {
        crate::datanode::WriteTxn::rewrite(self, partition, old, rows).await
    }
}

#[async_trait]
impl RewriteTarget for crate::datanode::Staging {
    fn tid(&self) -> u64 {
        crate::datanode::Staging::tid(self)
    }

    async fn rewrite(
        &mut self,
        partition: &str,
        old: &[DataFileRef],
        rows: Vec<RecordBatch>,
    ) -> std::result::Result<(), DataNodeError> {
        crate::datanode::Staging::rewrite(self, partition, old, rows).await
    }
}

/// The request a remote owner gets for its share of a DML statement.
fn remote_rewrite_request(
    db: &str,
    def: &TableDef,
    filters: &[Expr],
    op: &RewriteOp,
) -> Result<super::remote::RewriteRequest> {
    let encode = |e: &Expr| -> Result<Vec<u8>> {
        use datafusion_proto::bytes::Serializeable;
        Ok(e.to_bytes()?.to_vec())
    };
    Ok(super::remote::RewriteRequest {
        tid: 0,
        at: crate::datanode::TableAt {
            db: db.to_string(),
            table: def.name.clone(),
            table_id: def.id,
            generation: def.generation,
            min_applied_index: 0,
        },
        // Every filter must reach the owner, or it would change rows it should not.
        filters: filters.iter().map(encode).collect::<Result<_>>()?,
        update: match op {
            RewriteOp::Delete => None,
            RewriteOp::Update(a) => Some(
                a.iter()
                    .map(|(n, e)| Ok((n.clone(), encode(e)?)))
                    .collect::<Result<_>>()?,
            ),
        },
    })
}

/// Casts an incoming batch to the table's input schema (`TableDef::input_schema`; DataFusion
/// already cast the values, this fixes nullability and field names).
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (field, col) in schema.fields().iter().zip(batch.columns()) {
        columns.push(if col.data_type() == field.data_type() {
            col.clone()
        } else {
            cast(col, field.data_type())?
        });
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// A one-shot stream that performs a write and yields its row count.
type WriteFn =
    Box<dyn FnOnce(Arc<TaskContext>) -> futures::future::BoxFuture<'static, Result<u64>> + Send>;

struct OnceWrite {
    schema: SchemaRef,
    work: std::sync::Mutex<Option<WriteFn>>,
}

impl std::fmt::Debug for OnceWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnceWrite")
    }
}

impl PartitionStream for OnceWrite {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let work = self.work.lock().ok().and_then(|mut w| w.take());
        let schema = self.schema.clone();
        let fut = async move {
            let Some(work) = work else {
                return Err(DataFusionError::Internal("write executed twice".into()));
            };
            let n = work(ctx).await?;
            Ok(RecordBatch::try_new(
                schema,
                vec![Arc::new(UInt64Array::from(vec![n]))],
            )?)
        };
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::once(fut),
        ))
    }
}

/// File-level statistics for [`PruningPredicate`]: one container per file.
struct FileStatistics<'a> {
    files: &'a [DataFileRef],
    schema: &'a SchemaRef,
}

impl FileStatistics<'_> {
    fn values(&self, column: &Column, min: bool) -> Option<ArrayRef> {
        let field = self.schema.field_with_name(&column.name).ok()?;
        let values = self.files.iter().map(|f| {
            let (lo, hi) = f.min_max(&column.name, field.data_type());
            if min {
                lo
            } else {
                hi
            }
        });
        ScalarValue::iter_to_array(values).ok()
    }
}

impl PruningStatistics for FileStatistics<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, true)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, false)
    }

    fn num_containers(&self) -> usize {
        self.files.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let counts: Option<Vec<u64>> = self
            .files
            .iter()
            .map(|f| f.null_count(&column.name))
            .collect();
        counts.map(|c| Arc::new(UInt64Array::from(c)) as ArrayRef)
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from(
            self.files.iter().map(|f| f.record.rows).collect::<Vec<_>>(),
        )))
    }

    fn contained(
        &self,
        _column: &Column,
        _values: &std::collections::HashSet<ScalarValue>,
    ) -> Option<BooleanArray> {
        None
    }
}
