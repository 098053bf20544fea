//! `setDatabaseClusterReplicationExecutionSet(db, executionSet)`: puts a replicated database's
//! tasks in execution set 0 or 1 (each set runs apart, so a database in set 1 is not held up
//! by the bulk in set 0). Master cluster, admin only.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::ScalarUDF;

use crate::support::{at_most, bad_argument, int_arg, text_arg, ClusterFn, Pending};
use crate::Cluster;

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = [
    "setDatabaseClusterReplicationExecutionSet",
    "setdatabaseclusterreplicationexecutionset",
];

const NAME: &str = NAMES[0];

pub fn udf(cluster: Arc<dyn Cluster>, name: &'static str) -> ScalarUDF {
    ClusterFn::command(name, cluster, run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<()> {
    Box::pin(async move {
        at_most(NAME, &args, 2)?;
        let db = text_arg(NAME, &args, 0, "dbHandle")?;
        let set = match int_arg(NAME, &args, 1, "executionSet")? {
            Some(s @ (0 | 1)) => s as u8,
            _ => return Err(bad_argument(format!("{NAME}: executionSet must be 0 or 1"))),
        };
        cluster.set_execution_set(&db, set).await
    })
}
