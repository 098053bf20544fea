//! `startClusterReplication()`: (re)starts replication. On a master, transactions are queued
//! as tasks again (ENABLED); on a slave, pulling resumes and FAILED tasks run again. Admin only.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::ScalarUDF;

use crate::support::{at_most, ClusterFn, Pending};
use crate::Cluster;

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = ["startClusterReplication", "startclusterreplication"];

const NAME: &str = NAMES[0];

pub fn udf(cluster: Arc<dyn Cluster>, name: &'static str) -> ScalarUDF {
    ClusterFn::command(name, cluster, run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<()> {
    Box::pin(async move {
        at_most(NAME, &args, 0)?;
        cluster.set_replication_running(NAME, true).await
    })
}
