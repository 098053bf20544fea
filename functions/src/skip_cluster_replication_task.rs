//! `skipClusterReplicationTask(taskIds)`: marks tasks finished without running them (their
//! `details` say so). Slave cluster, admin only. `taskIds` is one id or an array of ids
//! (`skipClusterReplicationTask([3, 4])`).

use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::ScalarUDF;

use crate::support::{at_most, bad_argument, int_arg, list_arg, ClusterFn, Pending};
use crate::Cluster;

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = ["skipClusterReplicationTask", "skipclusterreplicationtask"];

const NAME: &str = NAMES[0];

pub fn udf(cluster: Arc<dyn Cluster>, name: &'static str) -> ScalarUDF {
    ClusterFn::command(name, cluster, run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<()> {
    Box::pin(async move {
        at_most(NAME, &args, 1)?;
        let ids = task_ids(&args)?;
        cluster.skip_tasks(&ids).await
    })
}

fn task_ids(args: &[ScalarValue]) -> Result<Vec<u64>, crate::FunctionError> {
    let wrong = || {
        bad_argument(format!(
            "{NAME}: taskIds must be a task id or an array of them"
        ))
    };
    let values = list_arg(args, 0).ok_or_else(wrong)?;
    values
        .iter()
        .map(
            |v| match int_arg(NAME, std::slice::from_ref(v), 0, "taskIds")? {
                Some(n) if n > 0 => Ok(n as u64),
                _ => Err(wrong()),
            },
        )
        .collect()
}
