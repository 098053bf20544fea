//! `addRangePartitions(dbUrl, newRanges[, level])`: a RANGE level of the database grows past
//! its last boundary; each new boundary ends a new partition (DolphinDB's function; its
//! `locations` argument has no counterpart: partitions live on the database's data nodes).
//! `newRanges` is one boundary or an array of them, strictly increasing and above the last
//! one, written as the scheme's values are: numbers, `date '2023-03-01'`, or texts
//! (`'2023.03.01'`, `'IBM'`). `level` (default 0) is the partition level, counted from 0.
//! Needs DDL on the database; replicated as ADD_RANGE_PARTITION.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::ScalarUDF;

use crate::support::{at_most, bad_argument, int_arg, list_arg, text_arg, ClusterFn, Pending};
use crate::Cluster;

/// The name in DolphinDB's style, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = ["addRangePartitions", "addrangepartitions"];

const NAME: &str = NAMES[0];

pub fn udf(cluster: Arc<dyn Cluster>, name: &'static str) -> ScalarUDF {
    ClusterFn::command(name, cluster, run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<()> {
    Box::pin(async move {
        at_most(NAME, &args, 3)?;
        let db = text_arg(NAME, &args, 0, "dbUrl")?;
        let bounds = list_arg(&args, 1)
            .filter(|b| !b.is_empty() && b.iter().all(|v| !v.is_null()))
            .ok_or_else(|| {
                bad_argument(format!(
                    "{NAME}: newRanges must be a boundary or a non-empty array of them"
                ))
            })?;
        let level = match int_arg(NAME, &args, 2, "level")? {
            None => 0,
            Some(l) => usize::try_from(l)
                .map_err(|_| bad_argument(format!("{NAME}: level must be 0 or more")))?,
        };
        cluster.add_range_partitions(&db, bounds, level).await
    })
}
