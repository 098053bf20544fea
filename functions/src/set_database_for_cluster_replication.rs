//! `setDatabaseForClusterReplication(db, option)`: switches cluster replication of one
//! database on (`true`) or off (`false`). Master cluster, admin only. The database is named by
//! its path (`'dfs://testDB'`).

use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::ScalarUDF;

use crate::support::{at_most, bool_arg, text_arg, ClusterFn, Pending};
use crate::Cluster;

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = [
    "setDatabaseForClusterReplication",
    "setdatabaseforclusterreplication",
];

const NAME: &str = NAMES[0];

pub fn udf(cluster: Arc<dyn Cluster>, name: &'static str) -> ScalarUDF {
    ClusterFn::command(name, cluster, run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<()> {
    Box::pin(async move {
        at_most(NAME, &args, 2)?;
        let db = text_arg(NAME, &args, 0, "dbHandle")?;
        let enabled = bool_arg(NAME, &args, 1, "option")?;
        cluster.set_database_replication(&db, enabled).await
    })
}
