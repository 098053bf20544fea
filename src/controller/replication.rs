//! The controller's side of cross-cluster replication: which of its entries become master
//! tasks, and the entries that change both the catalog and the queues in one raft entry (a
//! DDL command and its task; switching replication on for a database and the tasks that
//! recreate it on a slave). The queues themselves are [`crate::replication::model`]'s.

use std::sync::Arc;

use super::error::MetadataError;
use super::metadata::{Command, DatabaseMeta, Metadata};
use crate::catalog::NodeId;
use crate::replication::model::{
    Chunks, Context, Databases, DbReplication, MasterTask, OpType, Replication, ReplicationRole,
    SeedCatalog, TaskPayload, TxnTask,
};

impl Databases for std::collections::BTreeMap<String, Arc<DatabaseMeta>> {
    fn replication(&self, db: &str) -> Option<&DbReplication> {
        self.get(db)?.replication.as_ref()
    }

    fn replicated(&self) -> Vec<&str> {
        self.iter()
            .filter(|(_, meta)| meta.replication.is_some())
            .map(|(db, _)| db.as_str())
            .collect()
    }

    fn catalog(&self, db: &str) -> Option<SeedCatalog> {
        let meta = self.get(db)?;
        Some(SeedCatalog {
            def: meta.def.clone(),
            tables: meta.tables.values().cloned().collect(),
        })
    }
}

impl Metadata {
    /// What the replication state's transitions may know of the rest of the metadata.
    pub fn replication_context(&self) -> Context<'_> {
        Context {
            now_ns: self.clock_ns,
            index: self.applied_index,
            data_nodes: self.nodes.len(),
            databases: &self.databases,
        }
    }

    /// The replication state to change, with its [`Context`] (borrowed apart from it).
    pub(super) fn replication_mut(&mut self) -> (&mut Replication, Context<'_>) {
        let ctx = Context {
            now_ns: self.clock_ns,
            index: self.applied_index,
            data_nodes: self.nodes.len(),
            databases: &self.databases,
        };
        (&mut self.replication, ctx)
    }

    /// The replication settings of `db` if a change to it must become a task now: this is an
    /// enabled master and replication is on for the database.
    pub fn replicated_db(&self, db: &str) -> Option<&DbReplication> {
        if !self.replication.queues_tasks() {
            return None;
        }
        self.databases.replication(db)
    }

    /// The database a DDL command changes, with its operation type, if it is replicated.
    pub(super) fn ddl_task_of(&self, cmd: &Command) -> Option<(String, String, OpType)> {
        let (db, table, op) = match cmd {
            Command::DropDatabase { name, .. } => (name.clone(), String::new(), OpType::DropDb),
            Command::CreateTable { db, def, .. } => (
                db.clone(),
                def.name.clone(),
                if def.is_dimension() {
                    OpType::CreateTable
                } else {
                    OpType::CreatePartitionedTable
                },
            ),
            Command::DropTable { db, table, .. } => (db.clone(), table.clone(), OpType::DropTable),
            Command::TruncateTable { db, table } => {
                (db.clone(), table.clone(), OpType::TruncateTable)
            }
            Command::AddColumn { db, table, .. } => (db.clone(), table.clone(), OpType::AddColumn),
            Command::DropColumn { db, table, .. } => {
                (db.clone(), table.clone(), OpType::DropColumn)
            }
            Command::RenameColumn { db, table, .. } => {
                (db.clone(), table.clone(), OpType::RenameColumn)
            }
            Command::RenameTable { db, table, .. } => {
                (db.clone(), table.clone(), OpType::RenameTable)
            }
            Command::AddValuePartitions { db, .. } => {
                (db.clone(), String::new(), OpType::AddValuePartition)
            }
            Command::AddRangePartitions { db, .. } => {
                (db.clone(), String::new(), OpType::AddRangePartition)
            }
            _ => return None,
        };
        self.replicated_db(&db)?;
        Some((db, table, op))
    }

    /// Queues the task of a DDL command just applied (see [`Self::ddl_task_of`]); the slave
    /// applies the command as it is.
    pub(super) fn queue_ddl(&mut self, db: String, table: String, op: OpType, cmd: &Command) {
        let execution_set = self
            .databases
            .replication(&db)
            .map_or(0, |r| r.execution_set);
        // A command always encodes (its fields are strings, numbers and maps with string
        // keys); should one ever fail, the task replays as an empty DDL and fails on the slave
        // with a clear error instead of being lost.
        let encoded = serde_json::to_value(cmd).unwrap_or_default();
        self.last_tid += 1;
        let task = MasterTask {
            task_id: 0,
            tid: self.last_tid,
            group_id: 0,
            op,
            submit_ns: self.clock_ns,
            commit_index: self.applied_index,
            db,
            table,
            src: None,
            holders: Vec::new(),
            execution_set,
            chunks: Chunks::ddl(),
            payload: TaskPayload::Command(Box::new(encoded)),
            rows: 0,
            truncated: false,
        };
        self.replication.master.push(task);
    }

    /// Queues the task of a committed write transaction; returns its task id.
    pub(super) fn queue_txn(
        &mut self,
        tid: u64,
        src: NodeId,
        holders: &[NodeId],
        task: &TxnTask,
    ) -> Option<u64> {
        let execution_set = self.replicated_db(&task.db)?.execution_set;
        let task = MasterTask {
            task_id: 0,
            tid,
            group_id: 0,
            op: task.op,
            submit_ns: self.clock_ns,
            commit_index: self.applied_index,
            db: task.db.clone(),
            table: task.table.clone(),
            src: Some(src),
            holders: match task.payload {
                TaskPayload::Append => holders.to_vec(),
                _ => Vec::new(),
            },
            execution_set,
            chunks: task.chunks.clone(),
            payload: task.payload.clone(),
            rows: task.rows,
            truncated: false,
        };
        Some(self.replication.master.push(task))
    }

    /// `setDatabaseForClusterReplication`: switches replication of `db` on or off. Switching
    /// it on takes a cut of the database for every attached slave, which seeds it from the
    /// database's files as they are now ([`crate::replication::model::seed`]); a slave
    /// attaching later replays an empty database's creation (CREATE_DOMAIN) or gets a cut of
    /// its own. Switching it off queues DISABLE_REPLICATION, after which the slaves let clients
    /// write the database again.
    pub(super) fn set_db_replication(
        &mut self,
        db: &str,
        enabled: bool,
    ) -> Result<(), MetadataError> {
        self.replication.require_role(ReplicationRole::Master)?;
        if !enabled {
            // The slaves learn of it from a task of its own, so that they release the
            // database to their clients once they have applied everything before it.
            if self.replicated_db(db).is_some() {
                let cmd = Command::SetDatabaseReplication {
                    db: db.to_string(),
                    enabled: false,
                };
                self.queue_ddl(
                    db.to_string(),
                    String::new(),
                    OpType::DisableReplication,
                    &cmd,
                );
            }
            self.database_mut(db)?.replication = None;
            return Ok(());
        }
        let meta = self.database_mut(db)?;
        if meta.replication.is_some() {
            return Ok(());
        }
        meta.replication = Some(DbReplication::default());
        let has_tables = !meta.tables.is_empty();
        let def = meta.def.clone();
        let fresh = !has_tables
            && self
                .replication
                .master
                .replicated_before
                .insert(db.to_string());
        if fresh && self.replication.queues_tasks() {
            // A new, empty database: its history starts here, and every slave replays it
            // from this task on.
            let create = Command::CreateDatabase {
                def,
                if_not_exists: true,
            };
            self.queue_ddl(db.to_string(), String::new(), OpType::CreateDomain, &create);
            return Ok(());
        }
        // Rows no task holds, or a slave may hold an older state of the database (from an
        // earlier time of replication): the attached slaves install it as it is now, and a
        // slave attaching later is seeded too.
        let master = &mut self.replication.master;
        master.replicated_before.insert(db.to_string());
        master.incomplete = true;
        let (replication, ctx) = self.replication_mut();
        replication.cut_for_slaves(db, &ctx);
        Ok(())
    }

    /// `SeedCatalog`: installs the catalog of the cut of `db`'s seed (slave). The database
    /// keeps its id and placement here; each table whose columns, partitioning and sorting are
    /// the cut's keeps its id and generation (its rows are replaced by the seed's transaction),
    /// any other is replaced by an empty table of the cut's definition; tables the cut lacks are
    /// dropped.
    pub(super) fn install_seed_catalog(
        &mut self,
        db: &str,
        cut_task: u64,
    ) -> Result<(), MetadataError> {
        self.replication.check_seed_open(db, cut_task)?;
        let Some(seed) = self.replication.slave.seeds.get(db) else {
            return Ok(());
        };
        let catalog = seed.cut.catalog.clone();
        if let Some(repair) = &seed.cut.repair {
            // A repair changes no table: each it names must be the master's already.
            for table in repair.tables.keys() {
                let mine = self.databases.get(db).and_then(|m| m.tables.get(table));
                let master = catalog.tables.iter().find(|t| &t.name == table);
                if !matches!((mine, master), (Some(mine), Some(master)) if same_shape(mine, master))
                {
                    return Err(MetadataError::RepairCatalog {
                        db: db.to_string(),
                        table: table.clone(),
                    });
                }
            }
            self.replication.seed_started(db, cut_task)?;
            return Ok(());
        }
        if !self.databases.contains_key(db) {
            let mut def = catalog.def.clone();
            def.id = self.next_object_id();
            let mut placement: Vec<NodeId> = self.nodes.values().map(|n| n.id).collect();
            placement.sort_unstable();
            def.placement = placement;
            self.databases.insert(
                db.to_string(),
                Arc::new(DatabaseMeta {
                    def,
                    tables: Default::default(),
                    replication: None,
                }),
            );
        }
        let mut new_ids = Vec::new();
        for t in &catalog.tables {
            let same = self
                .databases
                .get(db)
                .and_then(|m| m.tables.get(&t.name))
                .is_some_and(|mine| same_shape(mine, t));
            if !same {
                new_ids.push((t.name.clone(), self.next_object_id()));
            }
        }
        let meta = self.database_mut(db)?;
        meta.def.levels = catalog.def.levels.clone();
        meta.def.engine = catalog.def.engine.clone();
        let keep: std::collections::BTreeSet<&str> =
            catalog.tables.iter().map(|t| t.name.as_str()).collect();
        meta.tables.retain(|name, _| keep.contains(name.as_str()));
        for (name, id) in new_ids {
            if let Some(t) = catalog.tables.iter().find(|t| t.name == name) {
                let mut def = t.clone();
                def.id = id;
                def.generation = 0;
                meta.tables.insert(name, def);
            }
        }
        self.replication.seed_started(db, cut_task)?;
        Ok(())
    }

    /// `setDatabaseClusterReplicationExecutionSet`.
    pub(super) fn set_execution_set(&mut self, db: &str, set: u8) -> Result<(), MetadataError> {
        self.replication.require_role(ReplicationRole::Master)?;
        let meta = self.database_mut(db)?;
        match meta.replication.as_mut() {
            Some(r) => {
                r.execution_set = set;
                Ok(())
            }
            None => Err(MetadataError::NotReplicated(db.to_string())),
        }
    }

    /// Finishes the slave tasks a commit or a DDL entry applies (see
    /// [`crate::replication::model::Replication::finish_tasks`]).
    pub(super) fn finish_tasks(
        &mut self,
        task_ids: &[u64],
        node: &str,
    ) -> Result<(), MetadataError> {
        let (replication, ctx) = self.replication_mut();
        Ok(replication.finish_tasks(task_ids, node, &ctx)?)
    }
}

/// Whether a slave's table holds rows as the master's `cut` table does: the same columns
/// (ids, names, types, constraints), partitioning and sorting.
fn same_shape(mine: &crate::catalog::TableDef, cut: &crate::catalog::TableDef) -> bool {
    mine.columns == cut.columns
        && mine.partition_columns == cut.partition_columns
        && mine.sort_columns == cut.sort_columns
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::metadata::CommandResult;
    use crate::replication::model::{ReplicationCommand, ReplicationState};

    /// Log entries written before the queues had a model of their own read as the same
    /// commands, and are written the same way.
    #[test]
    fn replication_commands_keep_their_encoding() {
        let old = r#"{"SkipTasks":{"ids":[3,4]}}"#;
        let cmd: Command = serde_json::from_str(old).unwrap();
        assert_eq!(
            cmd,
            Command::Replication(ReplicationCommand::SkipTasks { ids: vec![3, 4] })
        );
        assert_eq!(serde_json::to_string(&cmd).unwrap(), old);
        let nested = r#"{"Stamped":{"at_ns":7,"cmd":{"SetMasterState":{"state":"Disabled"}}}}"#;
        let cmd: Command = serde_json::from_str(nested).unwrap();
        assert_eq!(
            cmd,
            Command::Stamped {
                at_ns: 7,
                cmd: Box::new(Command::Replication(ReplicationCommand::SetMasterState {
                    state: ReplicationState::Disabled
                }))
            }
        );
        assert!(serde_json::from_str::<Command>(r#"{"NoSuchCommand":{}}"#).is_err());
    }

    /// A master queues a DDL command as the command itself; the slave reads it back as that
    /// command, also from a task an earlier build queued.
    #[test]
    fn a_ddl_task_carries_the_command_the_master_applied() {
        let mut m = Metadata::default();
        let configure = ReplicationCommand::ConfigureReplication(
            crate::replication::model::ReplicationConfig {
                role: Some(ReplicationRole::Master),
                slave_num: 1,
                cluster_id: "c".into(),
                ..Default::default()
            },
        );
        assert_eq!(m.apply(&Command::Replication(configure)), CommandResult::Ok);
        let create = Command::CreateDatabase {
            def: crate::catalog::DatabaseDef {
                name: "dfs://r".into(),
                id: 0,
                levels: Vec::new(),
                engine: "OLAP".into(),
                owner: "admin".into(),
                created_ms: 0,
                placement: Vec::new(),
            },
            if_not_exists: false,
        };
        assert!(!matches!(m.apply(&create), CommandResult::Err(_)));
        let enable = Command::SetDatabaseReplication {
            db: "dfs://r".into(),
            enabled: true,
        };
        assert_eq!(m.apply(&enable), CommandResult::Ok);
        // An empty database's history starts with its creation.
        let task = m.replication.master.tasks.values().next().unwrap().clone();
        assert_eq!(task.op, OpType::CreateDomain);
        assert!(!m.replication.master.incomplete);
        let drop = Command::DropDatabase {
            name: "dfs://r".into(),
            if_exists: false,
        };
        assert_eq!(m.apply(&drop), CommandResult::Ok);
        let task = m
            .replication
            .master
            .tasks
            .values()
            .next_back()
            .unwrap()
            .clone();
        assert_eq!(task.op, OpType::DropDb);
        let TaskPayload::Command(encoded) = &task.payload else {
            panic!("a DDL task carries its command, not {:?}", task.payload);
        };
        let read: Command = serde_json::from_value((**encoded).clone()).unwrap();
        assert_eq!(read, drop);
        // The task as it travels (a pull reply) and as a slave records it is unchanged.
        let json = serde_json::to_string(&task).unwrap();
        assert!(
            json.contains(r#""payload":{"Command":{"DropDatabase":"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<MasterTask>(&json).unwrap(), *task);
    }
}
