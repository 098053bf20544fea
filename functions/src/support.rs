//! The two shapes every function here takes, so each function file only says what it does:
//! - [`ClusterFn`]: a scalar function the cluster answers: a DolphinDB command, called as
//!   `select f(args)`, that runs once for its effect and returns NULL (like a PostgreSQL `void`
//!   function), or a value such as `getControllerAlias()`;
//! - [`TableFn`]: a function returning a table, called as `select * from f(args)`.
//!
//! Arguments must be constants (any constant expression: `-1`, `'dfs://db'`, `true`); they
//! reach the function as [`ScalarValue`]s.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::physical_plan::ExecutionPlan;

use crate::{Cluster, FunctionError};

/// What a function's body returns.
pub type Pending<T> = Pin<Box<dyn Future<Output = Result<T, FunctionError>> + Send>>;

/// A command's body: the cluster and the constant arguments.
pub type CommandBody = fn(Arc<dyn Cluster>, Vec<ScalarValue>) -> Pending<()>;

/// A value function's body.
pub type ValueBody = fn(Arc<dyn Cluster>, Vec<ScalarValue>) -> Pending<ScalarValue>;

/// A table function's body.
pub type TableBody = fn(Arc<dyn Cluster>, Vec<ScalarValue>) -> Pending<RecordBatch>;

/// An invalid argument (SQLSTATE 22023).
pub fn bad_argument(message: impl Into<String>) -> FunctionError {
    FunctionError {
        sqlstate: "22023".into(),
        message: message.into(),
    }
}

/// Fails unless there are at most `max` arguments.
pub fn at_most(name: &str, args: &[ScalarValue], max: usize) -> Result<(), FunctionError> {
    if args.len() > max {
        return Err(bad_argument(format!(
            "{name} takes at most {max} argument{}, got {}",
            if max == 1 { "" } else { "s" },
            args.len()
        )));
    }
    Ok(())
}

/// Argument `i` as text.
pub fn text_arg(
    name: &str,
    args: &[ScalarValue],
    i: usize,
    what: &str,
) -> Result<String, FunctionError> {
    match args.get(i) {
        Some(ScalarValue::Utf8(Some(s)))
        | Some(ScalarValue::LargeUtf8(Some(s)))
        | Some(ScalarValue::Utf8View(Some(s))) => Ok(s.clone()),
        _ => Err(bad_argument(format!(
            "{name}: argument {} ({what}) must be a string",
            i + 1
        ))),
    }
}

/// Argument `i` as a list of values: an array's elements, or the value itself. `None` if the
/// argument is missing or an array's elements cannot be read.
pub fn list_arg(args: &[ScalarValue], i: usize) -> Option<Vec<ScalarValue>> {
    match args.get(i)? {
        ScalarValue::List(list) => {
            let values = list.value(0);
            (0..values.len())
                .map(|i| ScalarValue::try_from_array(&values, i).ok())
                .collect()
        }
        v => Some(vec![v.clone()]),
    }
}

/// Argument `i` as a boolean.
pub fn bool_arg(
    name: &str,
    args: &[ScalarValue],
    i: usize,
    what: &str,
) -> Result<bool, FunctionError> {
    match args.get(i) {
        Some(ScalarValue::Boolean(Some(b))) => Ok(*b),
        _ => Err(bad_argument(format!(
            "{name}: argument {} ({what}) must be a boolean",
            i + 1
        ))),
    }
}

/// Argument `i` as an integer, if given.
pub fn int_arg(
    name: &str,
    args: &[ScalarValue],
    i: usize,
    what: &str,
) -> Result<Option<i64>, FunctionError> {
    let Some(v) = args.get(i) else {
        return Ok(None);
    };
    let n = match v {
        ScalarValue::Int8(Some(n)) => Some(i64::from(*n)),
        ScalarValue::Int16(Some(n)) => Some(i64::from(*n)),
        ScalarValue::Int32(Some(n)) => Some(i64::from(*n)),
        ScalarValue::Int64(Some(n)) => Some(*n),
        ScalarValue::UInt8(Some(n)) => Some(i64::from(*n)),
        ScalarValue::UInt16(Some(n)) => Some(i64::from(*n)),
        ScalarValue::UInt32(Some(n)) => Some(i64::from(*n)),
        ScalarValue::UInt64(Some(n)) => i64::try_from(*n).ok(),
        ScalarValue::Decimal128(Some(n), _, 0) => i64::try_from(*n).ok(),
        _ => None,
    };
    n.map(Some).ok_or_else(|| {
        bad_argument(format!(
            "{name}: argument {} ({what}) must be an integer",
            i + 1
        ))
    })
}

/// Argument `i` as a row limit: absent or -1 means none.
pub fn limit_arg(
    name: &str,
    args: &[ScalarValue],
    i: usize,
) -> Result<Option<usize>, FunctionError> {
    match int_arg(name, args, i, "limit")? {
        None | Some(-1) => Ok(None),
        Some(n) if n >= 0 => Ok(Some(n as usize)),
        Some(_) => Err(bad_argument(format!(
            "{name}: limit must be -1 or at least 0"
        ))),
    }
}

/// Task rows as DolphinDB lists them: finished ones first (the most recent 10,000), then
/// unfinished ones from the earliest, at most `limit` in all.
pub fn finished_first<T>(
    mut rows: Vec<T>,
    id: fn(&T) -> i64,
    finished: fn(&T) -> bool,
    limit: Option<usize>,
) -> Vec<T> {
    rows.sort_by_key(id);
    let (done, open): (Vec<T>, Vec<T>) = rows.into_iter().partition(finished);
    let skip = done.len().saturating_sub(FINISHED_SHOWN);
    let rows = done.into_iter().skip(skip).chain(open);
    match limit {
        Some(n) => rows.take(n).collect(),
        None => rows.collect(),
    }
}

/// At most this many finished tasks are listed.
pub const FINISHED_SHOWN: usize = 10_000;

/// A scalar function answered by the cluster: a DolphinDB command (returns NULL) or a value.
/// See the module documentation.
#[derive(Debug)]
pub struct ClusterFn {
    name: &'static str,
    cluster: Arc<dyn Cluster>,
    body: Body,
    returns: DataType,
    signature: Signature,
}

/// What a [`ClusterFn`] runs.
#[derive(Debug, Clone, Copy)]
enum Body {
    Command(CommandBody),
    Value(ValueBody),
}

impl ClusterFn {
    /// A command: runs once, for its effect, and returns NULL text.
    pub fn command(name: &'static str, cluster: Arc<dyn Cluster>, body: CommandBody) -> ScalarUDF {
        Self::udf(name, cluster, Body::Command(body), DataType::Utf8)
    }

    /// A function whose value (of type `returns`) the cluster gives.
    pub fn value(
        name: &'static str,
        cluster: Arc<dyn Cluster>,
        returns: DataType,
        body: ValueBody,
    ) -> ScalarUDF {
        Self::udf(name, cluster, Body::Value(body), returns)
    }

    fn udf(
        name: &'static str,
        cluster: Arc<dyn Cluster>,
        body: Body,
        returns: DataType,
    ) -> ScalarUDF {
        let signature = Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
            Volatility::Volatile,
        );
        let f = ClusterFn {
            name,
            cluster,
            body,
            returns,
            signature,
        };
        AsyncScalarUDF::new(Arc::new(f)).into_scalar_udf()
    }
}

impl PartialEq for ClusterFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.cluster, &other.cluster)
    }
}

impl Eq for ClusterFn {}

impl std::hash::Hash for ClusterFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for ClusterFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Err(DataFusionError::Internal(format!(
            "{} is evaluated asynchronously",
            self.name
        )))
    }
}

/// The arguments of an asynchronous scalar function's first row (the functions run once per
/// statement).
pub fn first_row(args: &ScalarFunctionArgs) -> Result<Vec<ScalarValue>> {
    args.args
        .iter()
        .map(|a| match a {
            ColumnarValue::Scalar(s) => Ok(s.clone()),
            ColumnarValue::Array(a) => ScalarValue::try_from_array(a, 0),
        })
        .collect()
}

#[async_trait]
impl AsyncScalarUDFImpl for ClusterFn {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if matches!(self.body, Body::Command(_)) && args.number_rows > 1 {
            return Err(external(bad_argument(format!(
                "{} is a command: call it on its own, as select {}(...)",
                self.name, self.name
            ))));
        }
        let values = first_row(&args)?;
        let cluster = self.cluster.clone();
        let value = match self.body {
            Body::Command(body) => body(cluster, values)
                .await
                .map(|()| ScalarValue::Utf8(None)),
            Body::Value(body) => body(cluster, values).await,
        };
        Ok(ColumnarValue::Scalar(value.map_err(external)?))
    }
}

/// A function returning a table. See the module documentation.
#[derive(Debug)]
pub struct TableFn {
    cluster: Arc<dyn Cluster>,
    schema: SchemaRef,
    body: TableBody,
}

impl TableFn {
    pub fn new(cluster: Arc<dyn Cluster>, schema: SchemaRef, body: TableBody) -> Arc<Self> {
        Arc::new(TableFn {
            cluster,
            schema,
            body,
        })
    }
}

impl TableFn {
    /// The columns of its result.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Runs the function with constant arguments (what a scan of its table does).
    pub fn run(&self, args: Vec<ScalarValue>) -> Pending<RecordBatch> {
        (self.body)(self.cluster.clone(), args)
    }
}

impl TableFunctionImpl for TableFn {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let values = constants(args.exprs(), args.session())?;
        let (cluster, body) = (self.cluster.clone(), self.body);
        Ok(PlannedTable::new(self.schema.clone(), move || {
            body(cluster.clone(), values.clone())
        }))
    }
}

/// One call of a table function: a table whose rows are fetched when the query is planned
/// (its scan), as one batch.
pub(crate) struct PlannedTable {
    schema: SchemaRef,
    rows: Box<dyn Fn() -> Pending<RecordBatch> + Send + Sync>,
}

impl PlannedTable {
    pub(crate) fn new(
        schema: SchemaRef,
        rows: impl Fn() -> Pending<RecordBatch> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(PlannedTable {
            schema,
            rows: Box::new(rows),
        })
    }
}

impl std::fmt::Debug for PlannedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedTable")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TableProvider for PlannedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = (self.rows)().await.map_err(external)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}

/// Evaluates constant arguments.
pub(crate) fn constants(exprs: &[Expr], session: &dyn Session) -> Result<Vec<ScalarValue>> {
    let schema = DFSchema::empty();
    let one_row = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    exprs
        .iter()
        .map(|e| {
            let physical = session.create_physical_expr(e.clone(), &schema)?;
            match physical.evaluate(&one_row)? {
                ColumnarValue::Scalar(s) => Ok(s),
                ColumnarValue::Array(a) => ScalarValue::try_from_array(&a, 0),
            }
        })
        .collect()
}

pub(crate) fn external(e: FunctionError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
