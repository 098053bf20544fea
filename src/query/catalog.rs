//! DataFusion's view of the controller's catalog: one catalog ([`super::CATALOG`]) whose
//! schemas are the databases (`"dfs://testDB"`) and whose tables are their tables, read from the
//! latest metadata on every lookup, plus the `loadTable(db, table)` table function.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{plan_err, DataFusionError, Result, ScalarValue};
use datafusion::datasource::TableProvider;
use datafusion::logical_expr::Expr;

use super::table::PorpoiseTable;
use crate::controller::error::MetadataError;
use crate::datanode::DataNode;

/// The schema every session starts in. It holds no tables: tables live in databases.
pub const PUBLIC: &str = "public";

/// The catalog of all databases.
#[derive(Debug)]
pub struct PorpoiseCatalog {
    node: Arc<DataNode>,
    /// Schemas registered by DataFusion extensions (pg_catalog).
    extra: std::sync::RwLock<std::collections::BTreeMap<String, Arc<dyn SchemaProvider>>>,
}

impl PorpoiseCatalog {
    pub fn new(node: Arc<DataNode>) -> Self {
        PorpoiseCatalog {
            node,
            extra: Default::default(),
        }
    }
}

impl CatalogProvider for PorpoiseCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = vec![PUBLIC.to_string()];
        if let Ok(extra) = self.extra.read() {
            names.extend(extra.keys().cloned());
        }
        names.extend(
            self.node
                .controller()
                .metadata()
                .database_names()
                .map(str::to_string),
        );
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(s) = self.extra.read().ok().and_then(|e| e.get(name).cloned()) {
            return Some(s);
        }
        if name == PUBLIC || self.node.controller().metadata().database(name).is_some() {
            return Some(Arc::new(DatabaseSchema {
                db: name.to_string(),
                node: self.node.clone(),
            }));
        }
        None
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        if name.starts_with("dfs://") {
            return plan_err!("databases are created with CREATE DATABASE");
        }
        let mut extra = self
            .extra
            .write()
            .map_err(|e| DataFusionError::Internal(e.to_string()))?;
        Ok(extra.insert(name.to_string(), schema))
    }
}

/// One database as a schema.
#[derive(Debug)]
pub struct DatabaseSchema {
    db: String,
    node: Arc<DataNode>,
}

#[async_trait]
impl SchemaProvider for DatabaseSchema {
    fn table_names(&self) -> Vec<String> {
        self.node
            .controller()
            .metadata()
            .database(&self.db)
            .map(|d| d.tables.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(table_provider(&self.node, &self.db, name))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.node
            .controller()
            .metadata()
            .table(&self.db, name)
            .is_some()
    }
}

fn table_provider(node: &Arc<DataNode>, db: &str, table: &str) -> Option<Arc<dyn TableProvider>> {
    let metadata = node.controller().metadata();
    let (_, def) = metadata.table(db, table)?;
    Some(Arc::new(PorpoiseTable::new(
        db.to_string(),
        def.clone(),
        node.clone(),
    )))
}

/// `loadTable('dfs://db', 'table')`: DolphinDB's way to name a table.
#[derive(Debug)]
pub struct LoadTable {
    node: Arc<DataNode>,
}

impl LoadTable {
    pub fn new(node: Arc<DataNode>) -> Self {
        LoadTable { node }
    }
}

impl TableFunctionImpl for LoadTable {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let text = |e: &Expr| match e {
            Expr::Literal(ScalarValue::Utf8(Some(s)), _)
            | Expr::Literal(ScalarValue::LargeUtf8(Some(s)), _)
            | Expr::Literal(ScalarValue::Utf8View(Some(s)), _) => Some(s.clone()),
            _ => None,
        };
        let exprs = args.exprs();
        let (Some(db), Some(table)) = (exprs.first().and_then(text), exprs.get(1).and_then(text))
        else {
            return plan_err!(
                "loadTable expects two string arguments: loadTable('dfs://db', 'table')"
            );
        };
        if exprs.len() != 2 {
            return plan_err!(
                "loadTable expects two string arguments: loadTable('dfs://db', 'table')"
            );
        }
        if let Some(provider) = table_provider(&self.node, &db, &table) {
            return Ok(provider);
        }
        let error = if self.node.controller().metadata().database(&db).is_some() {
            MetadataError::TableNotFound { db, table }
        } else {
            MetadataError::DatabaseNotFound(db)
        };
        Err(DataFusionError::External(Box::new(error)))
    }
}
