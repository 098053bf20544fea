//! The query layer: turns SQL text into work.
//!
//! - [`parse`] is the parsing layer: statement splitting, porpoise's DolphinDB-flavoured DDL,
//!   user statements, literals, dates and times, and COPY data. The other modules plan and
//!   execute: [`ddl_exec`] carries DDL out through the controller, [`users`] user statements,
//!   [`copy`] a COPY, [`cursor`] the session's cursors.
//! - Other statements are parsed by sqlparser (with the PostgreSQL-compatibility rewrites of
//!   `datafusion-pg-catalog`, which psql's catalog queries need) and planned by DataFusion over
//!   [`catalog::PorpoiseCatalog`]: databases are schemas named by their path
//!   (`"dfs://testDB"`), tables are [`table::PorpoiseTable`]s, and `loadTable(db, table)` names
//!   the same table as a table function.
//! - A [`Session`] is one client connection's state. Outside `BEGIN ... COMMIT` every statement
//!   is its own transaction; inside, the block's writes are staged and committed at COMMIT
//!   ([`block`]).
//!
//! Privileges: every statement is checked against the controller's latest metadata with
//! [`Session::require`] before it does anything — DDL and COPY where they are carried out,
//! everything DataFusion plans in [`Session::execute_planned`] (the one way a plan is
//! executed), from the tables its plan scans or writes. Catalog tables (`pg_catalog`,
//! `information_schema`) are not database tables and need no privilege, so psql's `\l`, `\dn`
//! and `\dt` work for everyone.

pub mod block;
pub mod catalog;
pub mod copy;
pub mod cursor;
pub mod ddl_exec;
pub mod error;
pub mod executor;
mod functions;
pub mod insert;
pub mod memory;
pub mod params;
pub mod parse;
pub mod parse_budget;
pub mod pg_compat;
mod pg_functions;
mod pg_text;
pub mod remote;
mod search_path;
pub mod service;
pub mod settings;
pub mod table;
pub mod users;

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::execution::context::SessionContext;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{LogicalPlan, WriteOp};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use sqlparser::ast::{
    CopySource, CopyTarget, Expr as SqlExpr, ObjectName, Statement, Visit, Visitor,
};

use crate::controller::client::ControllerClient;
use crate::controller::error::MetadataError;
use crate::controller::metadata::Privilege;
use crate::datanode::DataNode;
use crate::replication::slave::executions::Replica;
use crate::sqlstate::SqlState;
pub use error::QueryError;
use parse::copy_format::CopyOptions;
use parse::{ddl, split};

/// The name of the one catalog (PostgreSQL database) a porpoise cluster exposes.
pub const CATALOG: &str = "porpoise";

/// What the query layer needs from the node it runs on.
pub struct Engine {
    node: Arc<DataNode>,
    base: SessionContext,
    /// The node's runtime: its memory pool (`maxMemSize`) is shared by every query.
    runtime: Arc<RuntimeEnv>,
    parser: PostgresCompatibilityParser,
    /// Replication tasks this node applies (a slave data node).
    replica: Arc<Replica>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// A statement, parsed.
#[derive(Debug, Clone)]
pub enum Stmt {
    Ddl(ddl::DdlStatement),
    User(parse::users::UserStmt),
    Cursor(parse::cursor::CursorStmt),
    Sql(Box<Statement>),
}

/// A COPY ... FROM STDIN waiting for its data.
#[derive(Debug, Clone)]
pub struct CopyIn {
    pub db: String,
    pub table: String,
    /// Target columns, in the order the data has them.
    pub columns: Vec<String>,
    pub options: CopyOptions,
}

/// A `COPY ... TO STDOUT`: the rows to send and how to write them.
pub struct CopyOut {
    pub schema: SchemaRef,
    pub stream: SendableRecordBatchStream,
    pub options: CopyOptions,
    /// Columns whose non-NULL values are always quoted (CSV `FORCE_QUOTE`).
    pub force_quote: Vec<String>,
}

/// Where a session stands with respect to an explicit transaction block
/// (`BEGIN ... COMMIT`), as PostgreSQL reports it in ReadyForQuery. The block's writes are
/// staged until COMMIT ([`block::BlockWrites`]); once a statement in it failed, only its end
/// is accepted (25P02) and it commits nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// No block: `I`.
    Idle,
    /// Inside `BEGIN ... COMMIT`: `T`.
    Open,
    /// A statement of the block failed; only COMMIT or ROLLBACK (both end it) run: `E`.
    Failed,
}

/// What running a statement produced.
pub enum Outcome {
    /// A result set.
    Rows {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
    },
    /// A command tag such as `CREATE TABLE` or `INSERT 0 5`.
    Done(String),
    /// The client must now send COPY data.
    CopyIn(CopyIn),
    /// Rows to send as COPY data.
    CopyOut(CopyOut),
}

impl Engine {
    pub fn new(node: Arc<DataNode>) -> Result<Arc<Self>, QueryError> {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, "public")
            .with_information_schema(true)
            .set_bool("datafusion.sql_parser.enable_ident_normalization", false)
            // `0.1` is numeric in PostgreSQL, not a float.
            .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL");
        let limits = node.options().limits;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(memory::node_pool(limits.node_memory))
            .build_arc()?;
        let base = SessionContext::new_with_config_rt(config, runtime.clone());
        let catalog = Arc::new(catalog::PorpoiseCatalog::new(node.clone()));
        base.register_catalog(CATALOG, catalog);
        base.register_udtf("loadTable", Arc::new(catalog::LoadTable::new(node.clone())));
        base.register_udtf("loadtable", Arc::new(catalog::LoadTable::new(node.clone())));
        datafusion_pg_catalog::setup_pg_catalog(
            &base,
            CATALOG,
            users::Roles::new(node.controller().clone()),
        )
        .map_err(|e| QueryError::DataFusion(*e))?;
        // Every catalog object is reported as owned by oid 10, the bootstrap admin.
        base.register_udf(owner_udf());
        // Drivers parse version() to learn which PostgreSQL they talk to.
        base.register_udf(constant_udf(
            "version",
            &format!(
                "PostgreSQL {} (porpoise {}, Apache DataFusion {})",
                settings::SERVER_VERSION,
                env!("CARGO_PKG_VERSION"),
                datafusion::DATAFUSION_VERSION
            ),
        ));
        // After DataFusion's own, so PostgreSQL's `to_char` replaces the chrono-pattern one.
        for udf in pg_functions::udfs() {
            base.register_udf(udf);
        }
        base.register_udf(pg_compat::like_escape_udf());
        for udf in pg_compat::type_name_udfs() {
            base.register_udf(udf);
        }
        base.register_udf(pg_text::udf());
        base.add_analyzer_rule(Arc::new(pg_text::TimestampText::new()));
        // Last, so that no later registration puts an uncapped version back.
        memory::cap_functions(&base, limits.query_memory);
        let replica = Arc::new(Replica::new(node.options().replication_workers));
        Ok(Arc::new(Engine {
            node,
            base,
            runtime,
            parser: PostgresCompatibilityParser::new(),
            replica,
        }))
    }

    pub fn node(&self) -> &Arc<DataNode> {
        &self.node
    }

    pub fn controller(&self) -> &Arc<dyn ControllerClient> {
        self.node.controller()
    }

    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// A session state with every function registered, for work no client session owns
    /// (scan fragments and DML shares sent by other nodes).
    pub fn base_state(&self) -> datafusion::execution::SessionState {
        self.base.state()
    }

    /// A new session for an authenticated user. Its statements draw on the node's memory
    /// pool through a [`memory::QueryPool`] of `memLimitOfQueryResult` bytes (a session runs
    /// one statement at a time, so this is the limit of one query).
    pub fn session(self: &Arc<Self>, user: &str) -> Session {
        let limit = self.node.options().limits.query_memory;
        let runtime = RuntimeEnv {
            memory_pool: Arc::new(memory::QueryPool::new(
                self.runtime.memory_pool.clone(),
                limit,
            )),
            ..(*self.runtime).clone()
        };
        // The table providers find the session's block writes in its config.
        let writes = Arc::new(block::BlockWrites::default());
        let config = self
            .base
            .state()
            .config()
            .clone()
            .with_extension(writes.clone());
        let state = SessionStateBuilder::new_from_existing(self.base.state())
            .with_config(config)
            .with_runtime_env(Arc::new(runtime))
            .build();
        let ctx = SessionContext::new_with_state(state);
        for name in ["current_user", "session_user", "user", "current_role"] {
            ctx.register_udf(constant_udf(name, user));
        }
        let superuser = self
            .node
            .controller()
            .metadata()
            .user(user)
            .is_some_and(|u| u.is_admin);
        let settings = settings::Settings::new(user, superuser);
        // Drivers read settings when they connect (asyncpg `jit`, SQLAlchemy
        // `standard_conforming_strings`); asyncpg unlocks advisory locks whenever its pool
        // takes a connection back.
        for udf in settings::udfs(&settings) {
            ctx.register_udf(udf);
        }
        for udf in search_path::udfs(self.node.clone(), settings.clone()) {
            ctx.register_udf(udf);
        }
        // Built-in functions act as the session's user.
        porpoise_functions::register(
            &ctx,
            Arc::new(
                functions::ClusterAccess::new(self.node.clone(), user)
                    .with_replica(self.replica.clone()),
            ),
        );
        Session {
            engine: self.clone(),
            ctx,
            user: user.to_string(),
            block: std::sync::Mutex::new(Block::Idle),
            writes,
            cursors: cursor::Cursors::default(),
            closed_cursors: std::sync::Mutex::new(Vec::new()),
            settings,
        }
    }
}

/// One client's session.
pub struct Session {
    engine: Arc<Engine>,
    ctx: SessionContext,
    user: String,
    block: std::sync::Mutex<Block>,
    /// The writes of the open block (dropped with the session: a client that goes away
    /// aborts them).
    writes: Arc<block::BlockWrites>,
    cursors: cursor::Cursors,
    /// Cursors closed since the protocol layer last asked (it drops their portals).
    closed_cursors: std::sync::Mutex<Vec<String>>,
    /// `SET`/`SHOW` settings; `search_path` names the database of plain table names.
    settings: Arc<settings::Settings>,
}

impl Session {
    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Fails with SQLSTATE 42501 unless the session's user holds `privilege` on database `db`
    /// (or, for [`crate::controller::metadata::ALL_DATABASES`], on every database), and with
    /// 3F000 if a named database does not exist. The rule is
    /// [`crate::controller::view::MetadataView::check_privilege`].
    pub fn require(&self, db: &str, privilege: Privilege) -> Result<(), QueryError> {
        let metadata = self.engine.controller().metadata();
        metadata.check_privilege(&self.user, db, privilege)?;
        if privilege != Privilege::Read {
            metadata
                .replication()
                .check_not_replica(db)
                .map_err(MetadataError::from)?;
        }
        Ok(())
    }

    /// Checks what a planned statement needs: WRITE on the table an INSERT, UPDATE or DELETE
    /// changes and READ on every table it reads, in subqueries too. The rows UPDATE and
    /// DELETE look at in their own table need only WRITE (DolphinDB's rule: writing a table
    /// includes updating and deleting by condition).
    fn authorize(&self, plan: &LogicalPlan) -> Result<(), QueryError> {
        let mut needs: Vec<(String, Privilege)> = Vec::new();
        let mut written: Option<(String, String)> = None;
        plan.apply_with_subqueries(|node| {
            match node {
                LogicalPlan::Dml(dml) => {
                    if let Some(target) = porpoise_table(&dml.target) {
                        needs.push((target.0.clone(), Privilege::Write));
                        if matches!(dml.op, WriteOp::Update | WriteOp::Delete) {
                            written = Some(target);
                        }
                    }
                }
                LogicalPlan::TableScan(scan) => {
                    if let Some(read) = porpoise_table(&scan.source) {
                        if written.as_ref() != Some(&read) {
                            needs.push((read.0, Privilege::Read));
                        }
                    }
                }
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        // In plan order, so the target of a write is reported before the tables it reads.
        let mut checked = Vec::new();
        for need in needs {
            if checked.contains(&need) {
                continue;
            }
            let (db, privilege) = &need;
            self.require(db, *privilege)?;
            checked.push(need);
        }
        Ok(())
    }

    /// Splits and parses a query string into statements.
    pub fn parse(&self, sql: &str) -> Result<Vec<Stmt>, QueryError> {
        let mut out = Vec::new();
        for piece in split::statements(sql) {
            if let Some(c) = parse::cursor::parse(piece)? {
                out.push(Stmt::Cursor(c));
                continue;
            }
            if let Some(u) = parse::users::parse(piece)? {
                out.push(Stmt::User(u));
                continue;
            }
            if let Some(d) = ddl::parse_ddl(piece)? {
                out.push(Stmt::Ddl(d));
                continue;
            }
            parse_budget::check(piece)?;
            let piece = pg_compat::name_special_functions(piece);
            let parsed = self
                .engine
                .parser
                .parse(&piece)
                .map_err(|e| QueryError::Syntax(syntax_message(&e.to_string())))?;
            for mut s in parsed {
                pg_compat::rewrite(&mut s);
                self.rewrite_show(&mut s)?;
                out.push(Stmt::Sql(Box::new(s)));
            }
        }
        Ok(out)
    }

    /// The session's transaction block.
    pub fn block(&self) -> Block {
        *self.block.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the transaction block: the wire protocol's state is the authority (an error the
    /// protocol layer raised fails the block too).
    pub fn set_block(&self, block: Block) {
        *self.block.lock().unwrap_or_else(|e| e.into_inner()) = block;
        match block {
            // Ended: whatever it staged and did not commit is aborted.
            Block::Idle => drop(self.writes.close()),
            Block::Open | Block::Failed if !self.writes.is_open() => self.writes.open(),
            Block::Open | Block::Failed => {}
        }
    }

    /// The writes of the session's transaction block.
    pub fn block_writes(&self) -> &Arc<block::BlockWrites> {
        &self.writes
    }

    /// Fails with 25P02 when the block has failed and `stmt` does not end it.
    pub fn admit(&self, stmt: &Stmt) -> Result<(), QueryError> {
        let ends_block = matches!(
            stmt,
            Stmt::Sql(s) if matches!(
                s.as_ref(),
                Statement::Commit { .. } | Statement::Rollback { .. }
            )
        );
        self.refuse_in_failed_block(ends_block)
    }

    fn refuse_in_failed_block(&self, ends_block: bool) -> Result<(), QueryError> {
        if self.block() == Block::Failed && !ends_block {
            return Err(QueryError::other(
                SqlState::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        Ok(())
    }

    /// `SHOW name` becomes the query that answers it (see [`search_path::show_query`]).
    fn rewrite_show(&self, stmt: &mut Statement) -> Result<(), QueryError> {
        let Statement::ShowVariable { variable } = stmt else {
            return Ok(());
        };
        let words: Vec<String> = variable.iter().map(|i| i.value.clone()).collect();
        let Some(sql) = search_path::show_query(self, &words)? else {
            return Ok(());
        };
        let mut parsed = self
            .engine
            .parser
            .parse(&sql)
            .map_err(|e| QueryError::Syntax(syntax_message(&e.to_string())))?;
        if let Some(query) = parsed.pop() {
            *stmt = query;
        }
        Ok(())
    }

    /// Fails with 25P02 when the block has failed: a planned statement never ends it.
    pub fn admit_planned(&self) -> Result<(), QueryError> {
        self.refuse_in_failed_block(false)
    }

    /// Runs one statement.
    pub async fn execute(&self, stmt: &Stmt) -> Result<Outcome, QueryError> {
        self.admit(stmt)?;
        match stmt {
            Stmt::Ddl(d) => ddl_exec::execute(self, d).await.map(Outcome::Done),
            Stmt::User(u) => users::execute(self, u).await.map(Outcome::Done),
            Stmt::Cursor(c) => self.execute_cursor(c).await,
            Stmt::Sql(s) => self.execute_sql(s).await,
        }
    }

    /// What cursor `name` returns, if it is open.
    pub fn cursor(&self, name: &str) -> Option<cursor::CursorInfo> {
        self.cursors.info(name)
    }

    /// The cursors closed since the last call.
    pub fn take_closed_cursors(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .closed_cursors
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    fn cursors_closed(&self, names: Vec<String>) {
        self.closed_cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(names);
    }

    /// Ends the transaction block, and the cursors that end with it.
    fn end_block(&self, committed: bool) {
        self.set_block(Block::Idle);
        let closed = self.cursors.end_block(committed);
        self.cursors_closed(closed);
    }

    async fn execute_cursor(
        &self,
        stmt: &parse::cursor::CursorStmt,
    ) -> Result<Outcome, QueryError> {
        use parse::cursor::CursorStmt;
        match stmt {
            CursorStmt::Declare {
                name,
                binary,
                hold,
                query,
            } => {
                let block = self.block();
                if !hold && block == Block::Idle {
                    return Err(QueryError::other(
                        SqlState::NO_ACTIVE_SQL_TRANSACTION,
                        "DECLARE CURSOR can only be used in transaction blocks",
                    ));
                }
                if self.cursors.info(name).is_some() {
                    return Err(QueryError::other(
                        SqlState::DUPLICATE_CURSOR,
                        format!("cursor \"{name}\" already exists"),
                    ));
                }
                let mut parsed = self.parse(query)?;
                let query = match (parsed.pop(), parsed.is_empty()) {
                    (Some(Stmt::Sql(q)), true) if matches!(q.as_ref(), Statement::Query(_)) => q,
                    _ => {
                        return Err(QueryError::other(
                            SqlState::SYNTAX_ERROR,
                            "DECLARE CURSOR takes one SELECT or VALUES query",
                        ))
                    }
                };
                let Outcome::Rows { schema, stream } = self.execute_sql(&query).await? else {
                    return Err(QueryError::other(
                        SqlState::INTERNAL_ERROR,
                        "a cursor's query returned no rows",
                    ));
                };
                let info =
                    cursor::CursorInfo::new(*query, schema, *binary, *hold, block == Block::Open);
                self.cursors.declare(name, info, stream)?;
                Ok(Outcome::Done("DECLARE CURSOR".into()))
            }
            CursorStmt::Fetch {
                name,
                count,
                move_only: false,
            } => {
                let (schema, stream) = self.cursors.fetch(name, *count)?;
                Ok(Outcome::Rows { schema, stream })
            }
            CursorStmt::Fetch {
                name,
                count,
                move_only: true,
            } => {
                let n = self.cursors.skip(name, *count).await?;
                Ok(Outcome::Done(format!("MOVE {n}")))
            }
            CursorStmt::Close { name } => {
                let closed = match name {
                    Some(n) => vec![n.clone()],
                    None => self.cursors.names(),
                };
                self.cursors.close(name.as_deref())?;
                self.cursors_closed(closed);
                Ok(Outcome::Done("CLOSE CURSOR".into()))
            }
        }
    }

    async fn execute_sql(&self, stmt: &Statement) -> Result<Outcome, QueryError> {
        match stmt {
            Statement::StartTransaction { .. } => {
                self.set_block(Block::Open);
                Ok(Outcome::Done("BEGIN".into()))
            }
            Statement::Commit { .. } => {
                // COMMIT of a failed block rolls it back, and says so.
                let failed = self.block() == Block::Failed;
                let txns = self.writes.close();
                self.end_block(!failed);
                if failed {
                    drop(txns);
                    return Ok(Outcome::Done("ROLLBACK".into()));
                }
                // The block has ended whatever the outcome: a commit that fails leaves
                // nothing behind, as in PostgreSQL. Every table's rows or none.
                crate::datanode::WriteTxn::commit_all(txns).await?;
                Ok(Outcome::Done("COMMIT".into()))
            }
            Statement::Rollback {
                savepoint: None, ..
            } => {
                self.end_block(false);
                Ok(Outcome::Done("ROLLBACK".into()))
            }
            // A savepoint marks how far the block had written: ROLLBACK TO one is accepted
            // when nothing was written since (nothing to take back) and ends a failed block's
            // failure, as in PostgreSQL, so drivers that wrap their catalog queries in a
            // savepoint (psycopg inside a transaction) go on.
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => {
                self.writes.rollback_to(&name.value)?;
                if self.block() == Block::Failed {
                    self.set_block(Block::Open);
                }
                Ok(Outcome::Done("ROLLBACK".into()))
            }
            Statement::Savepoint { name } => {
                self.writes.savepoint(&name.value);
                Ok(Outcome::Done("SAVEPOINT".into()))
            }
            Statement::ReleaseSavepoint { .. } => Ok(Outcome::Done("RELEASE".into())),
            // psycopg sends DEALLOCATE ALL after a ROLLBACK once it has prepared statements
            // (and DEALLOCATE name when its cache is full). The protocol layer keeps a
            // connection's prepared statements until it closes; the drivers never reuse a
            // name, so acknowledging is enough for them.
            Statement::Deallocate { name, .. } => {
                let tag = if name.value.eq_ignore_ascii_case("all") {
                    "DEALLOCATE ALL"
                } else {
                    "DEALLOCATE"
                };
                Ok(Outcome::Done(tag.into()))
            }
            Statement::Set(set) => {
                search_path::set(self, set)?;
                Ok(Outcome::Done("SET".into()))
            }
            Statement::Reset(reset) => {
                match &reset.reset {
                    sqlparser::ast::Reset::ALL => self.settings.reset_all(),
                    sqlparser::ast::Reset::ConfigurationParameter(name) => {
                        self.settings.reset(&name.to_string())?
                    }
                }
                Ok(Outcome::Done("RESET".into()))
            }
            Statement::Copy {
                source,
                to,
                target,
                options,
                legacy_options,
                values,
            } => {
                if *to {
                    if !matches!(target, CopyTarget::Stdout) {
                        return Err(QueryError::Unsupported(
                            "COPY to a file or program on the server; use COPY ... TO STDOUT \
                             (psql's \\copy uses it)"
                                .into(),
                        ));
                    }
                    let spec = copy::options(options, legacy_options, true)?;
                    return self.copy_out(source, spec).await;
                }
                if !matches!(target, CopyTarget::Stdin) {
                    return Err(QueryError::Unsupported(
                        "COPY from a file or program on the server; use COPY ... FROM STDIN \
                         (psql's \\copy uses it)"
                            .into(),
                    ));
                }
                if !values.is_empty() {
                    return Err(QueryError::Unsupported("inline COPY data".into()));
                }
                let CopySource::Table {
                    table_name,
                    columns,
                } = source
                else {
                    return Err(QueryError::other(
                        SqlState::SYNTAX_ERROR,
                        "COPY (query) FROM is not valid: a query can only be copied TO",
                    ));
                };
                let (db, table) = self.resolve_table(table_name)?;
                self.require(&db, Privilege::Write)?;
                let spec = copy::options(options, legacy_options, false)?;
                Ok(Outcome::CopyIn(CopyIn {
                    db,
                    table,
                    columns: columns.iter().map(|c| c.value.clone()).collect(),
                    options: spec.options,
                }))
            }
            Statement::Query(_)
            | Statement::Explain { .. }
            | Statement::ExplainTable { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowColumns { .. }
            | Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_) => {
                let stmt = self.prepare(stmt)?;
                let plan = self.plan(&stmt).await?;
                self.execute_planned(&stmt, plan).await
            }
            other => Err(QueryError::Unsupported(format!(
                "statement not supported: {}",
                first_words(&other.to_string())
            ))),
        }
    }

    /// `COPY table [(columns)] TO STDOUT` or `COPY (query) TO STDOUT`: the rows of a SELECT,
    /// planned, authorized (READ on every table it scans) and streamed like any query.
    async fn copy_out(
        &self,
        source: &CopySource,
        spec: copy::CopySpec,
    ) -> Result<Outcome, QueryError> {
        let query = match source {
            CopySource::Query(q) => Statement::Query(q.clone()),
            CopySource::Table {
                table_name,
                columns,
            } => {
                let (db, table) = self.resolve_table(table_name)?;
                let metadata = self.engine.controller().metadata();
                let Some((_, def)) = metadata.table(&db, &table) else {
                    return Err(QueryError::Metadata(MetadataError::TableNotFound {
                        db,
                        table,
                    }));
                };
                let wanted: Vec<String> = columns.iter().map(|c| c.value.clone()).collect();
                let names: Vec<&str> = copy::columns(def, &wanted)?
                    .into_iter()
                    .map(|i| def.columns[i].name.as_str())
                    .collect();
                let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
                let sql = format!(
                    "SELECT {} FROM {}.{}",
                    names
                        .iter()
                        .map(|n| quote(n))
                        .collect::<Vec<_>>()
                        .join(", "),
                    quote(&db),
                    quote(&table)
                );
                let mut parsed = self
                    .engine
                    .parser
                    .parse(&sql)
                    .map_err(|e| QueryError::Syntax(syntax_message(&e.to_string())))?;
                match parsed.pop() {
                    Some(s) if parsed.is_empty() => s,
                    _ => return Err(QueryError::Syntax(format!("cannot read table {table}"))),
                }
            }
        };
        let stmt = self.prepare(&query)?;
        let plan = self.plan(&stmt).await?;
        let Outcome::Rows { schema, stream } = self.execute_planned(&stmt, plan).await? else {
            return Err(QueryError::other(
                SqlState::INTERNAL_ERROR,
                "COPY TO planned a statement that returns no rows",
            ));
        };
        Ok(Outcome::CopyOut(CopyOut {
            schema,
            stream,
            options: spec.options,
            force_quote: spec.force_quote,
        }))
    }

    /// The statement DataFusion should plan: refuses what DataFusion would plan with a
    /// meaning other than PostgreSQL's, and applies PostgreSQL's rules to INSERT literals.
    pub fn prepare(&self, stmt: &Statement) -> Result<Statement, QueryError> {
        self.check(stmt)?;
        let mut stmt = stmt.clone();
        insert::apply(self, &mut stmt)?;
        Ok(stmt)
    }

    fn check(&self, stmt: &Statement) -> Result<(), QueryError> {
        match stmt {
            Statement::Update(u) => {
                if u.from.is_some() {
                    return Err(QueryError::Unsupported("UPDATE ... FROM".into()));
                }
                reject_subqueries(u.selection.as_ref(), "UPDATE")
            }
            Statement::Delete(d) => {
                if d.using.is_some() {
                    return Err(QueryError::Unsupported("DELETE ... USING".into()));
                }
                reject_subqueries(d.selection.as_ref(), "DELETE")
            }
            Statement::Query(q) if selects_into(&q.body) => Err(QueryError::Unsupported(
                "SELECT INTO (create the table, then INSERT INTO ... SELECT)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Runs a statement DataFusion has planned (parameters already bound), if the user holds
    /// the privileges it needs. Checked here rather than when planning, so a statement
    /// prepared before a REVOKE is refused after it.
    pub async fn execute_planned(
        &self,
        stmt: &Statement,
        plan: LogicalPlan,
    ) -> Result<Outcome, QueryError> {
        self.authorize(&plan)?;
        let verb = match stmt {
            Statement::Insert(_) => "INSERT 0",
            Statement::Update(_) => "UPDATE",
            Statement::Delete(_) => "DELETE",
            _ => return self.run(plan).await,
        };
        let df = self.ctx.execute_logical_plan(plan).await?;
        let stream = executor::execute(df).await?;
        let batches = datafusion::physical_plan::common::collect(stream).await?;
        Ok(Outcome::Done(format!("{verb} {}", count_of(&batches))))
    }

    /// Plans a statement with DataFusion.
    pub async fn plan(&self, stmt: &Statement) -> Result<LogicalPlan, QueryError> {
        search_path::apply(self);
        let state = self.ctx.state();
        Ok(state
            .statement_to_plan(DFStatement::Statement(Box::new(stmt.clone())))
            .await?)
    }

    /// The schema of a plan's rows as they will be executed: after the analyzer's type
    /// coercion, which can change it (`case when c then 0 else 0.0 end` is Int64 before and
    /// Decimal after). A plan the analyzer cannot take yet (parameters of unknown type) keeps
    /// its own until it is executed.
    pub fn result_schema(&self, plan: &LogicalPlan) -> SchemaRef {
        let state = self.ctx.state();
        let analyzed =
            state
                .analyzer()
                .execute_and_check(plan.clone(), state.config_options(), |_, _| {});
        let schema = match &analyzed {
            Ok(p) => p.schema(),
            Err(_) => plan.schema(),
        };
        Arc::new(schema.as_arrow().clone())
    }

    /// Executes a DataFusion plan as a result set.
    async fn run(&self, plan: LogicalPlan) -> Result<Outcome, QueryError> {
        let df = self.ctx.execute_logical_plan(plan).await?;
        let stream = executor::execute(df).await?;
        let schema = stream.schema();
        Ok(Outcome::Rows { schema, stream })
    }

    /// Resolves a table name of a SQL statement to `(database, table)`.
    pub fn resolve_table(&self, name: &ObjectName) -> Result<(String, String), QueryError> {
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
            .collect();
        let (db, table) = match parts.as_slice() {
            [db, table] => (db.clone(), table.clone()),
            [catalog, db, table] if catalog == CATALOG => (db.clone(), table.clone()),
            [table] => match search_path::database(self) {
                Some(db) => (db, table.clone()),
                None => {
                    return Err(QueryError::other(
                        SqlState::UNDEFINED_TABLE,
                        format!(
                            "relation \"{table}\" does not exist: name tables with their database, e.g. \"dfs://db\".\"{table}\", or set search_path to \"dfs://db\""
                        ),
                    ))
                }
            },
            _ => return Err(QueryError::Syntax(format!("invalid table name {name}"))),
        };
        let metadata = self.engine.controller().metadata();
        if metadata.table(&db, &table).is_none() {
            return Err(QueryError::Metadata(MetadataError::TableNotFound {
                db,
                table,
            }));
        }
        Ok((db, table))
    }
}

/// `(database, table)` of the porpoise table behind a plan's table source; `None` for
/// catalog tables.
fn porpoise_table(
    source: &Arc<dyn datafusion::logical_expr::TableSource>,
) -> Option<(String, String)> {
    let provider = source_as_provider(source).ok()?;
    let table = provider.downcast_ref::<table::PorpoiseTable>()?;
    Some((table.db.clone(), table.def.name.clone()))
}

/// `pg_get_userbyid(oid)`: oid 10 (the owner of every catalog object) and 0 (what the
/// catalog emulation gives tables) are the bootstrap admin.
fn owner_udf() -> datafusion::logical_expr::ScalarUDF {
    use arrow::array::{Array, AsArray, StringArray};
    use arrow::datatypes::{DataType, Int32Type};
    use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
    create_udf(
        "pg_get_userbyid",
        vec![DataType::Int32],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let oids = arrays[0].as_primitive::<Int32Type>();
            let names: StringArray = (0..oids.len())
                .map(|i| {
                    (!oids.is_null(i)).then(|| match oids.value(i) {
                        // pg_class has 0 for the owner of porpoise's tables.
                        0 | 10 => users::DEFAULT_ADMIN.0.to_string(),
                        oid => format!("unknown (OID={oid})"),
                    })
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(names)))
        }),
    )
}

/// A zero-argument SQL function returning a fixed string.
fn constant_udf(name: &str, value: &str) -> datafusion::logical_expr::ScalarUDF {
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
    let value = value.to_string();
    create_udf(
        name,
        vec![],
        arrow::datatypes::DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                value.clone(),
            ))))
        }),
    )
}

/// The count DataFusion's DML plans return.
fn count_of(batches: &[arrow::array::RecordBatch]) -> u64 {
    use arrow::array::AsArray;
    use arrow::datatypes::UInt64Type;
    batches
        .iter()
        .filter(|b| b.num_columns() == 1 && b.num_rows() > 0)
        .filter_map(|b| {
            b.column(0)
                .as_primitive_opt::<UInt64Type>()
                .map(|a| (0..a.len()).map(|i| a.value(i)).sum::<u64>())
        })
        .sum()
}

/// Whether a query body has a `SELECT ... INTO table` (which would create a table).
fn selects_into(body: &sqlparser::ast::SetExpr) -> bool {
    use sqlparser::ast::SetExpr;
    match body {
        SetExpr::Select(s) => s.into.is_some(),
        SetExpr::SetOperation { left, right, .. } => selects_into(left) || selects_into(right),
        SetExpr::Query(q) => selects_into(&q.body),
        _ => false,
    }
}

/// DataFusion would pick only the target-table part of a WHERE with subqueries; refuse rather
/// than change the wrong rows.
fn reject_subqueries(selection: Option<&SqlExpr>, what: &str) -> Result<(), QueryError> {
    struct Finder(bool);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &SqlExpr) -> std::ops::ControlFlow<()> {
            if matches!(
                expr,
                SqlExpr::Subquery(_) | SqlExpr::InSubquery { .. } | SqlExpr::Exists { .. }
            ) {
                self.0 = true;
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    if let Some(expr) = selection {
        let mut f = Finder(false);
        let _ = expr.visit(&mut f);
        if f.0 {
            return Err(QueryError::Unsupported(format!(
                "subqueries in the WHERE clause of {what}"
            )));
        }
    }
    Ok(())
}

fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// sqlparser's messages, as PostgreSQL users are used to reading them.
fn syntax_message(m: &str) -> String {
    let m = m.trim_start_matches("sql parser error: ");
    format!("syntax error: {m}")
}
