//! `removeClusterReplicationSlave(slaveClusterId)`: detaches a slave cluster from this master.
//! Its progress no longer holds back the truncation of finished tasks (nor the deletion of
//! their task data), and it no longer counts against `clusterReplicationSlaveNum`. The id is
//! `getRecentSlaveReplicationInfo().slaveClusterId`; an id that is neither attached nor refused
//! fails with 42704. Master, admin only (no DolphinDB counterpart: DolphinDB has no way to
//! detach a slave).
//!
//! A removed slave that pulls again attaches as a new slave: it gets the tasks not truncated
//! by then, so what was truncated meanwhile never reaches it until it is seeded.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::ScalarUDF;

use crate::support::{at_most, text_arg, ClusterFn, Pending};
use crate::Cluster;

/// The name in DolphinDB's style, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = [
    "removeClusterReplicationSlave",
    "removeclusterreplicationslave",
];

const NAME: &str = NAMES[0];

pub fn udf(cluster: Arc<dyn Cluster>, name: &'static str) -> ScalarUDF {
    ClusterFn::command(name, cluster, run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<()> {
    Box::pin(async move {
        at_most(NAME, &args, 1)?;
        let id = text_arg(NAME, &args, 0, "slaveClusterId")?;
        cluster.remove_slave(&id).await
    })
}
