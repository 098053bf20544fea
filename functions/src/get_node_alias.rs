//! `getNodeAlias()`: the alias of the data node the session is connected to (`cluster.nodes`),
//! as in DolphinDB; `rpc(getNodeAlias(), ...)` runs on this node. A standalone server's one
//! data node is called `datanode`. Answered from the node's own metadata, so it is an ordinary
//! (synchronous) function and may be used anywhere, in `rpc`'s arguments too.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::Cluster;

/// DolphinDB's name, and the one PostgreSQL clients fold unquoted names to.
pub const NAMES: [&str; 2] = ["getNodeAlias", "getnodealias"];

pub fn udf(cluster: Arc<dyn Cluster>, name: &'static str) -> ScalarUDF {
    ScalarUDF::new_from_impl(NodeAlias {
        name,
        cluster,
        signature: Signature::nullary(Volatility::Stable),
    })
}

#[derive(Debug)]
struct NodeAlias {
    name: &'static str,
    cluster: Arc<dyn Cluster>,
    signature: Signature,
}

impl PartialEq for NodeAlias {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.cluster, &other.cluster)
    }
}

impl Eq for NodeAlias {}

impl std::hash::Hash for NodeAlias {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for NodeAlias {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
            self.cluster.node_alias(),
        ))))
    }
}
