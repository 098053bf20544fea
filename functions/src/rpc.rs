//! `rpc(nodeAlias, 'function', args...)`: runs a built-in function on another node of the same
//! cluster and returns its result, as DolphinDB's `rpc` does. Two forms:
//! - `select * from rpc(getControllerAlias(), 'getSlaveReplicationStatus')`: the result of a
//!   table function (a scalar function gives one row, one column named after it);
//! - `select rpc(getControllerAlias(), 'skipClusterReplicationTask', 938)`: the value of a
//!   scalar function (commands give NULL); a table function here fails with 42809.
//!
//! Where it runs ([`Cluster::locate`]):
//! - a controller alias (any controller of `cluster.nodes`; `getControllerAlias()`): the function
//!   runs as it does when called directly, which for every controller function here means on the
//!   controller leader, so the result is the controller's;
//! - this node's alias (`getNodeAlias()`): here;
//! - another data node's alias: on that data node ([`Cluster::call_on`]), as the session's user;
//! - anything else: 42704.
//!
//! The function is named as a string (DolphinDB passes the function itself); it must be one of
//! the built-in functions of this crate (42883 otherwise, `rpc` itself included). The inner
//! function applies its own checks (admin only, cluster role) as the session's user.
//!
//! Arguments must be constants, except that the node may be given as `getControllerAlias()`:
//! that call is asynchronous (it asks the controllers), and DataFusion cannot evaluate one
//! asynchronous function inside another's arguments, so `rpc` recognises it (in the scalar form
//! through [`ControllerTarget`], an analyzer rule) instead of evaluating it.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::datasource::TableProvider;
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use crate::support::{bad_argument, constants, external, first_row, PlannedTable, TableFn};
use crate::{get_controller_alias, Cluster, FunctionError};

/// DolphinDB's name (already lower case).
pub const NAMES: [&str; 2] = ["rpc", "rpc"];

const NAME: &str = NAMES[0];

/// Where a node alias leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A controller of this cluster.
    Controller,
    /// The data node this session is on.
    Local,
    /// Another data node of this cluster.
    Remote,
}

/// The node an `rpc` names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// `getControllerAlias()`.
    Controller,
    Alias(String),
}

/// No such function (42883).
fn unknown_function(name: &str) -> FunctionError {
    FunctionError {
        sqlstate: "42883".into(),
        message: if name.eq_ignore_ascii_case(NAME) {
            "rpc cannot call rpc".to_string()
        } else {
            format!("rpc: function {name} does not exist (rpc calls porpoise's built-in functions)")
        },
    }
}

/// The function's error as it was raised, if it was one of ours.
fn function_error(e: DataFusionError) -> FunctionError {
    if let DataFusionError::External(inner) = e.find_root() {
        if let Some(f) = inner.downcast_ref::<FunctionError>() {
            return f.clone();
        }
    }
    FunctionError::internal(e)
}

/// The built-in functions `rpc` can call, acting for one user.
#[derive(Debug)]
pub struct Builtins {
    cluster: Arc<dyn Cluster>,
    /// By lower-case name.
    scalars: HashMap<String, ScalarUDF>,
    /// By lower-case name.
    tables: HashMap<String, Arc<TableFn>>,
}

/// One built-in function.
enum Builtin<'a> {
    Scalar(&'a ScalarUDF),
    Table(&'a Arc<TableFn>),
}

impl Builtins {
    pub(crate) fn new(cluster: Arc<dyn Cluster>) -> Self {
        Builtins {
            cluster,
            scalars: HashMap::new(),
            tables: HashMap::new(),
        }
    }

    pub(crate) fn add_scalar(&mut self, udf: ScalarUDF) {
        self.scalars.insert(udf.name().to_ascii_lowercase(), udf);
    }

    pub(crate) fn add_table(&mut self, name: &'static str, f: Arc<TableFn>) {
        self.tables.insert(name.to_ascii_lowercase(), f);
    }

    fn find(&self, name: &str) -> Result<Builtin<'_>, FunctionError> {
        let key = name.to_ascii_lowercase();
        if let Some(f) = self.scalars.get(&key) {
            return Ok(Builtin::Scalar(f));
        }
        if let Some(f) = self.tables.get(&key) {
            return Ok(Builtin::Table(f));
        }
        Err(unknown_function(name))
    }

    /// The columns of `function`'s result as a table.
    fn result_schema(&self, function: &str) -> Result<SchemaRef, FunctionError> {
        match self.find(function)? {
            Builtin::Table(f) => Ok(f.schema()),
            Builtin::Scalar(f) => {
                let ty = f.return_type(&[]).map_err(function_error)?;
                Ok(Arc::new(Schema::new(vec![Field::new(f.name(), ty, true)])))
            }
        }
    }

    /// Runs `function` on this node: a table function's rows, or a one-row table holding a
    /// scalar function's value. What a data node does for another's `rpc`.
    pub async fn call(
        &self,
        function: &str,
        args: Vec<ScalarValue>,
    ) -> Result<RecordBatch, FunctionError> {
        let udf = match self.find(function)? {
            Builtin::Table(f) => return f.run(args).await,
            Builtin::Scalar(udf) => udf,
        };
        let schema = self.result_schema(function)?;
        let value = call_scalar(udf, args, schema.field(0).clone().into()).await?;
        let array = value.to_array_of_size(1).map_err(FunctionError::internal)?;
        RecordBatch::try_new(schema, vec![array]).map_err(FunctionError::internal)
    }

    /// Runs `function` on `target`.
    async fn dispatch(
        &self,
        target: &Target,
        function: &str,
        args: Vec<ScalarValue>,
    ) -> Result<RecordBatch, FunctionError> {
        let schema = self.result_schema(function)?;
        let alias = match target {
            Target::Controller => return self.call(function, args).await,
            Target::Alias(alias) => alias,
        };
        match self.cluster.locate(alias)? {
            Node::Controller | Node::Local => self.call(function, args).await,
            Node::Remote => {
                let batch = self.cluster.call_on(alias, function, args).await?;
                conform(batch, schema)
            }
        }
    }
}

/// Invokes a scalar function with constant arguments.
async fn call_scalar(
    udf: &ScalarUDF,
    args: Vec<ScalarValue>,
    return_field: FieldRef,
) -> Result<ScalarValue, FunctionError> {
    let arg_fields = args
        .iter()
        .map(|a| Arc::new(Field::new("arg", a.data_type(), true)))
        .collect();
    let args = ScalarFunctionArgs {
        args: args.into_iter().map(ColumnarValue::Scalar).collect(),
        arg_fields,
        number_rows: 1,
        return_field,
        config_options: Arc::new(ConfigOptions::default()),
    };
    let value = match udf.inner().downcast_ref::<AsyncScalarUDF>() {
        Some(f) => f.invoke_async_with_args(args).await,
        None => udf.invoke_with_args(args),
    }
    .map_err(function_error)?;
    match value {
        ColumnarValue::Scalar(s) => Ok(s),
        ColumnarValue::Array(a) => ScalarValue::try_from_array(&a, 0).map_err(function_error),
    }
}

/// Another node's result in this node's schema (the same built-in functions, so the same
/// columns; field names and nullability are taken from here).
fn conform(batch: RecordBatch, schema: SchemaRef) -> Result<RecordBatch, FunctionError> {
    let same_types = batch.num_columns() == schema.fields().len()
        && batch
            .columns()
            .iter()
            .zip(schema.fields())
            .all(|(c, f)| c.data_type() == f.data_type());
    if !same_types {
        return Err(FunctionError::internal(format!(
            "rpc: the remote node answered with columns {:?}, expected {:?}",
            batch.schema().fields(),
            schema.fields()
        )));
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(schema, batch.columns().to_vec(), &options)
        .map_err(FunctionError::internal)
}

fn text(value: Option<&ScalarValue>, what: &str, position: usize) -> Result<String, FunctionError> {
    match value {
        Some(ScalarValue::Utf8(Some(s)))
        | Some(ScalarValue::LargeUtf8(Some(s)))
        | Some(ScalarValue::Utf8View(Some(s))) => Ok(s.clone()),
        _ => Err(bad_argument(format!(
            "rpc: argument {position} ({what}) must be a string, e.g. rpc(getControllerAlias(), 'getSlaveReplicationStatus')"
        ))),
    }
}

/// Whether `e` is a call of `getControllerAlias()`.
fn is_controller_alias(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f)
        if f.args.is_empty() && get_controller_alias::NAMES.contains(&f.func.name()))
}

/// `rpc` as a table function.
#[derive(Debug)]
pub struct RpcTable {
    builtins: Arc<Builtins>,
}

impl RpcTable {
    pub(crate) fn new(builtins: Arc<Builtins>) -> Arc<Self> {
        Arc::new(RpcTable { builtins })
    }
}

impl TableFunctionImpl for RpcTable {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let Some(node) = exprs.first() else {
            return Err(external(bad_argument(
                "rpc needs a node alias and a function name: rpc(alias, 'function', args...)",
            )));
        };
        let target = if is_controller_alias(node) {
            Target::Controller
        } else {
            let value = constants(std::slice::from_ref(node), args.session())?;
            Target::Alias(text(value.first(), "node alias", 1).map_err(external)?)
        };
        let mut rest = constants(&exprs[1..], args.session())?;
        let function = text(rest.first(), "function name", 2).map_err(external)?;
        rest.remove(0);
        let schema = self.builtins.result_schema(&function).map_err(external)?;
        let builtins = self.builtins.clone();
        Ok(PlannedTable::new(schema, move || {
            let (builtins, target, function, args) = (
                builtins.clone(),
                target.clone(),
                function.clone(),
                rest.clone(),
            );
            Box::pin(async move { builtins.dispatch(&target, &function, args).await })
        }))
    }
}

/// `rpc` as a scalar function. With `on_controller`, the node argument has been taken out
/// (it was `getControllerAlias()`: see [`ControllerTarget`]).
#[derive(Debug)]
struct RpcFn {
    builtins: Arc<Builtins>,
    on_controller: bool,
    signature: Signature,
}

/// The scalar form of `rpc`.
pub(crate) fn udf(builtins: Arc<Builtins>) -> ScalarUDF {
    rpc_udf(builtins, false)
}

fn rpc_udf(builtins: Arc<Builtins>, on_controller: bool) -> ScalarUDF {
    let f = RpcFn {
        builtins,
        on_controller,
        signature: Signature::variadic_any(Volatility::Volatile),
    };
    AsyncScalarUDF::new(Arc::new(f)).into_scalar_udf()
}

impl RpcFn {
    /// The position of the function name among the arguments.
    fn function_at(&self) -> usize {
        if self.on_controller {
            0
        } else {
            1
        }
    }
}

impl PartialEq for RpcFn {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.builtins, &other.builtins) && self.on_controller == other.on_controller
    }
}

impl Eq for RpcFn {}

impl std::hash::Hash for RpcFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        NAME.hash(state);
        self.on_controller.hash(state);
    }
}

impl ScalarUDFImpl for RpcFn {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    /// The called function's type; its name must be a constant.
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let i = self.function_at();
        let function = text(
            args.scalar_arguments.get(i).copied().flatten(),
            "function name",
            2,
        )
        .map_err(external)?;
        match self.builtins.find(&function).map_err(external)? {
            Builtin::Scalar(f) => Ok(Arc::new(Field::new(NAME, f.return_type(&[])?, true))),
            Builtin::Table(_) => Err(external(FunctionError {
                sqlstate: "42809".into(),
                message: format!(
                    "rpc: {function} returns a table: call it as select * from rpc(alias, '{function}', ...)"
                ),
            })),
        }
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Err(DataFusionError::Internal(
            "rpc is evaluated asynchronously".into(),
        ))
    }
}

#[async_trait]
impl AsyncScalarUDFImpl for RpcFn {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.number_rows > 1 {
            return Err(external(bad_argument(
                "rpc runs a function once: call it on its own, as select rpc(...)",
            )));
        }
        let mut values = first_row(&args)?;
        let target = if self.on_controller {
            Target::Controller
        } else {
            Target::Alias(text(values.first(), "node alias", 1).map_err(external)?)
        };
        let rest = values.split_off(self.function_at());
        let function = text(rest.first(), "function name", 2).map_err(external)?;
        let batch = self
            .builtins
            .dispatch(&target, &function, rest[1..].to_vec())
            .await
            .map_err(external)?;
        if batch.num_columns() != 1 || batch.num_rows() != 1 {
            return Err(external(FunctionError::internal(format!(
                "rpc: {function} answered {} rows of {} columns, not one value",
                batch.num_rows(),
                batch.num_columns()
            ))));
        }
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            batch.column(0),
            0,
        )?))
    }
}

/// Rewrites `rpc(getControllerAlias(), f, args...)` into a call of `rpc` that knows its node
/// is the controller, so that the scalar form works with DolphinDB's idiom (see the module
/// documentation). Output column names are kept.
#[derive(Debug)]
pub struct ControllerTarget {
    on_controller: Arc<ScalarUDF>,
}

impl ControllerTarget {
    pub(crate) fn new(builtins: Arc<Builtins>) -> Arc<Self> {
        Arc::new(ControllerTarget {
            on_controller: Arc::new(rpc_udf(builtins, true)),
        })
    }

    fn rewrite(&self, e: Expr) -> Result<Transformed<Expr>> {
        let Expr::ScalarFunction(f) = &e else {
            return Ok(Transformed::no(e));
        };
        if f.func.name() != NAME
            || Arc::ptr_eq(&f.func, &self.on_controller)
            || !f.args.first().is_some_and(is_controller_alias)
        {
            return Ok(Transformed::no(e));
        }
        Ok(Transformed::yes(Expr::ScalarFunction(
            ScalarFunction::new_udf(self.on_controller.clone(), f.args[1..].to_vec()),
        )))
    }
}

impl AnalyzerRule for ControllerTarget {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|e| {
                let saved = names.save(&e);
                let t = e.transform_up(|e| self.rewrite(e))?;
                Ok(if t.transformed {
                    t.update_data(|e| saved.restore(e))
                } else {
                    t
                })
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "porpoise_rpc_controller_target"
    }
}
