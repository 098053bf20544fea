//! `getControllerAlias()`: the alias of the controller leader, as in DolphinDB. Answered from
//! any data node (the call is routed to the controllers).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::ScalarUDF;

use crate::support::{at_most, ClusterFn, Pending};
use crate::Cluster;

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = ["getControllerAlias", "getcontrolleralias"];

const NAME: &str = NAMES[0];

pub fn udf(cluster: Arc<dyn Cluster>, name: &'static str) -> ScalarUDF {
    ClusterFn::value(name, cluster, DataType::Utf8, run)
}

fn run(cluster: Arc<dyn Cluster>, args: Vec<ScalarValue>) -> Pending<ScalarValue> {
    Box::pin(async move {
        at_most(NAME, &args, 0)?;
        Ok(ScalarValue::Utf8(Some(cluster.controller_alias().await?)))
    })
}
