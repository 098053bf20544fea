//! porpoise's built-in SQL functions, one per file, in DataFusion's `ScalarUDFImpl` /
//! `TableFunctionImpl` style. The crate is pure: it reaches the cluster only through the
//! [`Cluster`] trait the server implements, and imports nothing from the server.
//!
//! Functions that need the cluster (the controller, other nodes) are async scalar functions:
//! DataFusion awaits them during execution, so a call never blocks a runtime thread.
//!
//! Names are DolphinDB's (`getControllerAlias`); each is also registered in lower case, since
//! PostgreSQL clients fold unquoted names.

pub mod get_controller_alias;

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::async_udf::AsyncScalarUDF;

/// What the functions need from the cluster.
#[async_trait]
pub trait Cluster: Send + Sync + std::fmt::Debug + 'static {
    /// The alias of the controller leader (`cluster.nodes`).
    async fn controller_alias(&self) -> Result<String, FunctionError>;
}

/// A function's failure, with the SQLSTATE the client sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionError {
    pub sqlstate: String,
    pub message: String,
}

impl std::fmt::Display for FunctionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FunctionError {}

/// Registers every function on `ctx`.
pub fn register(ctx: &SessionContext, cluster: Arc<dyn Cluster>) {
    use get_controller_alias::GetControllerAlias;
    for name in GetControllerAlias::NAMES {
        let f = GetControllerAlias::new(cluster.clone(), name);
        ctx.register_udf(AsyncScalarUDF::new(Arc::new(f)).into_scalar_udf());
    }
}
