//! `stopClusterReplication()`: on a master, stops queueing tasks (DISABLED: transactions
//! committed meanwhile are never replicated); on a slave, stops pulling new tasks (tasks
//! already running finish). Admin only.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::ScalarUDF;

use crate::support::{at_most, ClusterFn, Pending};
use crate::Cluster;

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = ["stopClusterReplication", "stopclusterreplication"];

const NAME: &str = NAMES[0];

pub fn udf(cluster: Arc<dyn Cluster>, name: &'static str) -> ScalarUDF {
    ClusterFn::command(name, cluster, run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<()> {
    Box::pin(async move {
        at_most(NAME, &args, 0)?;
        cluster.set_replication_running(NAME, false).await
    })
}
