//! `getControllerAlias()`: the alias of the controller leader, as in DolphinDB. Answered from
//! any data node (the call is routed to the controllers).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::async_udf::AsyncScalarUDFImpl;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::Cluster;

/// `getControllerAlias()`.
#[derive(Debug)]
pub struct GetControllerAlias {
    cluster: Arc<dyn Cluster>,
    signature: Signature,
    name: &'static str,
}

impl GetControllerAlias {
    /// The function under `name` (DolphinDB's, or the folded one).
    pub fn new(cluster: Arc<dyn Cluster>, name: &'static str) -> Self {
        GetControllerAlias {
            cluster,
            signature: Signature::nullary(Volatility::Volatile),
            name,
        }
    }

    /// Its names.
    pub const NAMES: [&'static str; 2] = ["getControllerAlias", "getcontrolleralias"];
}

impl PartialEq for GetControllerAlias {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.cluster, &other.cluster)
    }
}

impl Eq for GetControllerAlias {}

impl std::hash::Hash for GetControllerAlias {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl ScalarUDFImpl for GetControllerAlias {
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
        Err(DataFusionError::Internal(
            "getControllerAlias is evaluated asynchronously".into(),
        ))
    }
}

#[async_trait]
impl AsyncScalarUDFImpl for GetControllerAlias {
    async fn invoke_async_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let alias = self
            .cluster
            .controller_alias()
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(alias))))
    }
}
