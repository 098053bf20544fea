//! One connection's protocol handlers: simple query, extended query (prepared statements with
//! parameters), COPY FROM STDIN and COPY TO STDOUT.
//!
//! The transaction status of ReadyForQuery (`I`, `T`, `E`) is pgwire's, kept per connection;
//! the session's [`Block`] is set from it before every statement and reported back after, so
//! an error raised anywhere (also inside pgwire, e.g. by a Bind) fails an open block, and a
//! failed block takes nothing but COMMIT or ROLLBACK (25P02).

use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::logical_expr::LogicalPlan;
use futures::{Sink, SinkExt};
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::{send_copy_in_response, CopyHandler};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{
    send_execution_response, send_query_response, send_ready_for_query, ExtendedQueryHandler,
    SimpleQueryHandler,
};
use pgwire::api::results::{CopyResponse, DescribeStatementResponse, FieldInfo, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, PgWireConnectionState, PgWireServerHandlers, Type, METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail, CopyOutResponse};
use pgwire::messages::response::{EmptyQueryResponse, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::PgWireBackendMessage;
use sqlparser::ast::{CopySource, Statement};
use tokio::sync::watch;

use super::cancel::{CancelRegistry, Canceller};
use super::copy_out::CopyEncoder;
use super::encode::{fields, pg_column_names, query_response, rename};
use super::error::{error_info, fatal, pg_error};
use super::params::{client_type, parameter_values};
use super::startup::{AuthState, Startup};
use crate::query::copy::CopySink;
use crate::query::params::assign_parameter_types;
use crate::query::parse::copy_format::CopyFormat;
use crate::query::parse::cursor::{Count, CursorStmt};
use crate::query::{Block, CopyOut, Engine, Outcome, QueryError, Session, Stmt};
use crate::sqlstate::SqlState;

/// The session of a connection, created on its first statement (when the user is known), and
/// its registration for cancel requests (once its process id and secret key are known).
struct SessionCell {
    engine: Arc<Engine>,
    /// Statements run only once this says the client authenticated: pgwire would otherwise
    /// pass a refused client's next messages to the query handlers.
    auth: watch::Receiver<AuthState>,
    session: OnceLock<Arc<Session>>,
    cancels: Arc<CancelRegistry>,
    canceller: OnceLock<Arc<Canceller>>,
}

impl SessionCell {
    fn get<C: ClientInfo>(&self, client: &C) -> PgWireResult<Arc<Session>> {
        if *self.auth.borrow() != AuthState::Done {
            return Err(PgWireError::UserError(Box::new(fatal(
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                "not authenticated".to_owned(),
            ))));
        }
        Ok(self
            .session
            .get_or_init(|| {
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                Arc::new(self.engine.session(&user))
            })
            .clone())
    }

    /// The cancel requests for this connection from now on.
    fn cancel_requests<C: ClientInfo>(&self, client: &C) -> watch::Receiver<u64> {
        self.canceller
            .get_or_init(|| {
                let (pid, key) = client.pid_and_secret_key();
                self.cancels.register(pid, &key)
            })
            .watch()
    }
}

/// All handlers of one connection.
pub struct Handlers {
    connection: Arc<Connection>,
    startup: Arc<Startup>,
    cancels: Arc<CancelRegistry>,
}

impl Handlers {
    pub fn new(
        engine: Arc<Engine>,
        startup: Arc<Startup>,
        auth: watch::Receiver<AuthState>,
        cancels: Arc<CancelRegistry>,
    ) -> Self {
        let cell = Arc::new(SessionCell {
            engine,
            auth,
            session: OnceLock::new(),
            cancels: cancels.clone(),
            canceller: OnceLock::new(),
        });
        Handlers {
            connection: Arc::new(Connection {
                parser: Arc::new(Parser { cell: cell.clone() }),
                cell,
                copy: tokio::sync::Mutex::new(CopyState::Idle),
            }),
            startup,
            cancels,
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.connection.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.connection.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.connection.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancels.clone()
    }
}

enum CopyState {
    Idle,
    Running(Box<CopySink>),
    /// The COPY failed; its data is ignored until the client ends it.
    Failed,
}

/// The query and COPY handlers of one connection.
pub struct Connection {
    cell: Arc<SessionCell>,
    parser: Arc<Parser>,
    copy: tokio::sync::Mutex<CopyState>,
}

/// Runs a statement, turning a panic (a bug) into an internal error for this statement instead
/// of a dropped connection.
async fn guarded<T>(
    work: impl std::future::Future<Output = Result<T, QueryError>>,
) -> Result<T, QueryError> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => {
            let what = super::error::panic_message(panic.as_ref());
            tracing::error!(panic = %what, "statement panicked");
            Err(QueryError::other(
                SqlState::INTERNAL_ERROR,
                format!("internal error: {what}"),
            ))
        }
    }
}

/// The error for a result set whose RowDescription cannot be built: a column of a type
/// arrow-pg has no PostgreSQL type for (`select map(['a'], [1])`).
fn unsendable(e: PgWireError) -> QueryError {
    let why = match e {
        PgWireError::UserError(info) => info.message,
        other => other.to_string(),
    };
    QueryError::other(
        SqlState::FEATURE_NOT_SUPPORTED,
        format!("cannot send this result to the client: {why}"),
    )
}

/// A command tag from the query layer's text (`INSERT 0 5`, `CREATE TABLE`).
fn tag(text: &str) -> Tag {
    let mut words: Vec<&str> = text.split(' ').collect();
    let rows = words.last().and_then(|w| w.parse::<usize>().ok());
    match (words.first().copied(), rows) {
        (Some("INSERT"), Some(n)) => Tag::new("INSERT").with_oid(0).with_rows(n),
        (Some(cmd), Some(n)) if words.len() == 2 => Tag::new(cmd).with_rows(n),
        _ => {
            words.retain(|w| !w.is_empty());
            Tag::new(&words.join(" "))
        }
    }
}

/// The session's block as pgwire's transaction status, and back.
fn status_of(block: Block) -> TransactionStatus {
    match block {
        Block::Idle => TransactionStatus::Idle,
        Block::Open => TransactionStatus::Transaction,
        Block::Failed => TransactionStatus::Error,
    }
}

fn block_of(status: TransactionStatus) -> Block {
    match status {
        TransactionStatus::Idle => Block::Idle,
        TransactionStatus::Transaction => Block::Open,
        TransactionStatus::Error => Block::Failed,
    }
}

/// A failure while answering a statement: the statement's own (the client is told and the
/// session goes on), or the connection's (it ends).
enum Failure {
    Statement(Box<ErrorInfo>),
    Wire(PgWireError),
}

impl From<PgWireError> for Failure {
    fn from(e: PgWireError) -> Self {
        match e {
            // Raised by the rows of a result while they were sent.
            PgWireError::UserError(info) => Failure::Statement(info),
            other => Failure::Wire(other),
        }
    }
}

impl From<QueryError> for Failure {
    fn from(e: QueryError) -> Self {
        Failure::Statement(Box::new(error_info(&e)))
    }
}

impl Failure {
    /// The error for pgwire to report.
    fn into_pg(self) -> PgWireError {
        match self {
            Failure::Statement(info) => PgWireError::UserError(info),
            Failure::Wire(e) => e,
        }
    }
}

impl Connection {
    /// Turns an outcome into a response; starts a COPY FROM if asked to, and sends the data of
    /// a COPY TO (answering with its `COPY n` tag).
    async fn respond<C>(
        &self,
        client: &mut C,
        session: &Session,
        stmt: &Stmt,
        outcome: Outcome,
        format: &Format,
    ) -> Result<Response, Failure>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(match outcome {
            Outcome::Rows { schema, stream } => {
                let schema = result_names(session, stmt, &schema);
                // Only the RowDescription carries the names; the rows are encoded by position.
                let mut rows = query_response(&schema, stream, format)
                    .map_err(|e| Failure::from(unsendable(e)))?;
                if matches!(stmt, Stmt::Cursor(_)) {
                    rows.set_command_tag("FETCH");
                }
                Response::Query(rows)
            }
            Outcome::Done(text) => match text.as_str() {
                "BEGIN" => Response::TransactionStart(tag(&text)),
                "COMMIT" | "ROLLBACK" => Response::TransactionEnd(tag(&text)),
                _ => Response::Execution(tag(&text)),
            },
            Outcome::CopyIn(copy) => {
                let sink = CopySink::start(session, &copy).await?;
                let columns = if copy.columns.is_empty() {
                    session
                        .engine()
                        .controller()
                        .metadata()
                        .table(&copy.db, &copy.table)
                        .map(|(_, t)| t.columns.len())
                        .unwrap_or(0)
                } else {
                    copy.columns.len()
                };
                let format = i8::from(copy.options.format == CopyFormat::Binary);
                *self.copy.lock().await = CopyState::Running(Box::new(sink));
                Response::CopyIn(CopyResponse::new(format, columns, futures::stream::empty()))
            }
            Outcome::CopyOut(copy) => {
                let rows = copy_out(client, stmt, copy).await?;
                Response::Execution(Tag::new("COPY").with_rows(rows as usize))
            }
        })
    }

    /// Runs the statements of a simple Query message, sending each one's response before the
    /// next runs. Returns whether a COPY FROM STDIN is now waiting for data.
    async fn simple_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<bool>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self.cell.get(client)?;
        session.set_block(block_of(client.transaction_status()));
        let stmts = match session.parse(query) {
            Ok(s) => s,
            Err(e) => {
                self.statement_failed(client, &session, error_info(&e))
                    .await?;
                return Ok(false);
            }
        };
        if stmts.is_empty() {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await?;
            return Ok(false);
        }
        for stmt in &stmts {
            let cancels = self.cell.cancel_requests(client);
            let result = match executed(session.execute(stmt), cancels).await {
                Ok(outcome) => {
                    let format = simple_format(&session, stmt);
                    self.respond(client, &session, stmt, outcome, &format).await
                }
                Err(e) => Err(Failure::from(e)),
            };
            drop_cursor_portals(client, &session);
            let sent = match result {
                Ok(Response::Query(rows)) => send_query_response(client, rows, true)
                    .await
                    .map_err(Failure::from),
                Ok(
                    Response::Execution(tag)
                    | Response::TransactionStart(tag)
                    | Response::TransactionEnd(tag),
                ) => send_execution_response(client, tag)
                    .await
                    .map_err(Failure::from),
                Ok(Response::CopyIn(copy)) => {
                    send_copy_in_response(client, copy).await?;
                    client.set_transaction_status(status_of(session.block()));
                    return Ok(true);
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            match sent {
                Ok(()) => client.set_transaction_status(status_of(session.block())),
                Err(Failure::Statement(e)) => {
                    // PostgreSQL abandons the rest of a query string after an error.
                    self.statement_failed(client, &session, *e).await?;
                    return Ok(false);
                }
                Err(Failure::Wire(e)) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Reports a failed statement; an open block fails with it.
    async fn statement_failed<C>(
        &self,
        client: &mut C,
        session: &Session,
        e: ErrorInfo,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if session.block() == Block::Open {
            session.set_block(Block::Failed);
        }
        client.set_transaction_status(status_of(session.block()));
        client
            .feed(PgWireBackendMessage::ErrorResponse(e.into()))
            .await?;
        Ok(())
    }
}

/// `schema` with the column names PostgreSQL gives the rows of `stmt` (for a FETCH, those of
/// its cursor's query).
fn result_names(session: &Session, stmt: &Stmt, schema: &SchemaRef) -> SchemaRef {
    let n = schema.fields().len();
    let names = match stmt {
        Stmt::Sql(s) => pg_column_names(s, n),
        Stmt::Cursor(CursorStmt::Fetch { name, .. }) => session
            .cursor(name)
            .and_then(|c| pg_column_names(&c.query, n)),
        _ => None,
    };
    rename(schema, names.as_deref())
}

/// The result format of a statement of the simple protocol: binary for a FETCH from a BINARY
/// cursor.
fn simple_format(session: &Session, stmt: &Stmt) -> Format {
    match stmt {
        Stmt::Cursor(CursorStmt::Fetch { name, .. })
            if session.cursor(name).is_some_and(|c| c.binary) =>
        {
            Format::UnifiedBinary
        }
        _ => Format::UnifiedText,
    }
}

/// Drops the protocol-level portals of the cursors the session closed.
fn drop_cursor_portals<C>(client: &mut C, session: &Session)
where
    C: ClientPortalStore,
    C::PortalStore: PortalStore,
{
    for name in session.take_closed_cursors() {
        client.portal_store().rm_portal(&name);
    }
}

/// Sends the rows of a COPY TO: CopyOutResponse, one CopyData per row, CopyDone. Returns the
/// number of rows; an error while the rows are produced ends the COPY with it (the client
/// gets an ErrorResponse instead of CopyDone, as from PostgreSQL).
async fn copy_out<C>(client: &mut C, stmt: &Stmt, copy: CopyOut) -> Result<u64, Failure>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    use futures::StreamExt;
    let wire = |e: C::Error| Failure::Wire(PgWireError::from(e));
    // A query's columns are named as its SELECT would name them.
    let names = match stmt {
        Stmt::Sql(s) => match s.as_ref() {
            Statement::Copy {
                source: CopySource::Query(q),
                ..
            } => pg_column_names(&Statement::Query(q.clone()), copy.schema.fields().len()),
            _ => None,
        },
        _ => None,
    };
    let schema = rename(&copy.schema, names.as_deref());
    let mut encoder = CopyEncoder::new(&schema, copy.options, &copy.force_quote)?;
    let format = encoder.format_code();
    let columns = encoder.columns();
    client
        .feed(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
            format,
            columns as i16,
            vec![format as i16; columns],
        )))
        .await
        .map_err(wire)?;
    if let Some(header) = encoder.begin() {
        client
            .feed(PgWireBackendMessage::CopyData(CopyData::new(header)))
            .await
            .map_err(wire)?;
    }
    let mut stream = copy.stream;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(QueryError::DataFusion)?;
        for row in encoder.batch(&batch)? {
            client
                .feed(PgWireBackendMessage::CopyData(CopyData::new(row)))
                .await
                .map_err(wire)?;
        }
    }
    if let Some(trailer) = encoder.end() {
        client
            .feed(PgWireBackendMessage::CopyData(CopyData::new(trailer)))
            .await
            .map_err(wire)?;
    }
    client
        .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await
        .map_err(wire)?;
    Ok(encoder.rows())
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    /// Runs the statements of the query string one after the other, each answered before the
    /// next runs (so rows stream and a COPY TO in the middle comes out in order), then reports
    /// ReadyForQuery with the transaction status the statements left.
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        if self.simple_query(client, &query.query).await? {
            // CopyDone, CopyFail or an error ends the COPY and sends ReadyForQuery.
            client.set_state(PgWireConnectionState::CopyInProgress(false));
            return Ok(());
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        let status = client.transaction_status();
        send_ready_for_query(client, status).await
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Every query goes through `on_query`.
        Err(pg_error(&QueryError::other(
            SqlState::INTERNAL_ERROR,
            "simple query handler called directly",
        )))
    }
}

#[async_trait]
impl CopyHandler for Connection {
    async fn on_copy_data<C>(&self, _client: &mut C, data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut state = self.copy.lock().await;
        if let CopyState::Running(sink) = &mut *state {
            if let Err(e) = sink.push(&data.data).await {
                // Dropping the sink aborts the transaction and removes what it staged.
                *state = CopyState::Failed;
                return Err(pg_error(&e));
            }
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let state = std::mem::replace(&mut *self.copy.lock().await, CopyState::Idle);
        match state {
            CopyState::Running(sink) => match sink.finish().await {
                Ok(rows) => {
                    client
                        .send(PgWireBackendMessage::CommandComplete(
                            Tag::new("COPY").with_rows(rows as usize).into(),
                        ))
                        .await?;
                    Ok(())
                }
                Err(e) => Err(pg_error(&e)),
            },
            // The error was reported when it happened.
            CopyState::Failed => Ok(()),
            CopyState::Idle => Err(pg_error(&QueryError::other(
                SqlState::PROTOCOL_VIOLATION,
                "CopyDone received outside of COPY",
            ))),
        }
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Dropping the sink aborts its transaction.
        *self.copy.lock().await = CopyState::Idle;
        pg_error(&QueryError::other(
            SqlState::QUERY_CANCELED,
            format!("COPY from stdin failed: {}", fail.message),
        ))
    }
}

/// A statement prepared through the extended protocol.
#[derive(Clone, Debug)]
pub enum Prepared {
    /// Planned by DataFusion; may have `$n` parameters.
    Planned {
        stmt: Box<Statement>,
        plan: Box<LogicalPlan>,
        params: Vec<Option<DataType>>,
        /// The rows' schema, as Describe reports it (see `Session::result_schema`).
        schema: SchemaRef,
    },
    /// A FETCH from a cursor: no parameters, the cursor's rows.
    Fetch { stmt: Box<Stmt>, schema: SchemaRef },
    /// Anything else (DDL, users, COPY, BEGIN ...): no parameters, no rows.
    Other(Box<Stmt>),
}

/// Parses and plans statements of the extended protocol.
pub struct Parser {
    cell: Arc<SessionCell>,
}

/// Statements DataFusion plans when they are prepared, so that Describe can report their
/// parameters and result columns. Everything that returns rows must be here: a statement
/// described with no columns must not send rows when it runs.
fn plannable(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::Query(_)
            | Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::Explain { .. }
            | Statement::ExplainTable { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowColumns { .. }
    )
}

/// Whether a planned statement returns rows (rather than a command tag).
fn returns_rows(stmt: &Statement) -> bool {
    !matches!(
        stmt,
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
    )
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = self.cell.get(client)?;
        let mut stmts = session.parse(sql).map_err(|e| pg_error(&e))?;
        if stmts.len() > 1 {
            return Err(pg_error(&QueryError::other(
                SqlState::SYNTAX_ERROR,
                "cannot insert multiple commands into a prepared statement",
            )));
        }
        let Some(stmt) = stmts.pop() else {
            return Ok(None);
        };
        // A failed block refuses every statement but its end already here, as PostgreSQL.
        session.set_block(block_of(client.transaction_status()));
        session.admit(&stmt).map_err(|e| pg_error(&e))?;
        match stmt {
            Stmt::Sql(s) if plannable(&s) => {
                let s = Box::new(session.prepare(&s).map_err(|e| pg_error(&e))?);
                let plan = session.plan(&s).await.map_err(|e| pg_error(&e))?;
                let given: Vec<Option<DataType>> = types
                    .iter()
                    .map(|t| t.as_ref().and_then(client_type))
                    .collect();
                let plan = assign_parameter_types(plan, &given)
                    .map_err(|e| pg_error(&QueryError::DataFusion(e)))?;
                let params = parameter_types(&plan).map_err(|e| pg_error(&e))?;
                let schema = session.result_schema(&plan);
                Ok(Some(Prepared::Planned {
                    stmt: s,
                    plan: Box::new(plan),
                    params,
                    schema,
                }))
            }
            Stmt::Cursor(CursorStmt::Fetch {
                name,
                count,
                move_only: false,
            }) => {
                let info = session.cursor(&name).ok_or_else(|| {
                    pg_error(&QueryError::other(
                        SqlState::INVALID_CURSOR_NAME,
                        format!("cursor \"{name}\" does not exist"),
                    ))
                })?;
                let stmt = Stmt::Cursor(CursorStmt::Fetch {
                    name,
                    count,
                    move_only: false,
                });
                let schema = result_names(&session, &stmt, &info.schema);
                Ok(Some(Prepared::Fetch {
                    stmt: Box::new(stmt),
                    schema,
                }))
            }
            other => Ok(Some(Prepared::Other(Box::new(other)))),
        }
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        match stmt {
            Prepared::Planned { params, .. } => params
                .iter()
                .map(|t| match t {
                    Some(t) => arrow_pg::datatypes::into_pg_type(t),
                    None => Ok(Type::UNKNOWN),
                })
                .collect(),
            Prepared::Fetch { .. } | Prepared::Other(_) => Ok(vec![]),
        }
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match stmt {
            Prepared::Planned { stmt, schema, .. } if returns_rows(stmt) => {
                let names = pg_column_names(stmt, schema.fields().len());
                let schema = rename(schema, names.as_deref());
                fields(&schema, format.unwrap_or(&Format::UnifiedText))
                    .map_err(|e| pg_error(&unsendable(e)))
            }
            Prepared::Fetch { schema, .. } => {
                fields(schema, format.unwrap_or(&Format::UnifiedText))
                    .map_err(|e| pg_error(&unsendable(e)))
            }
            _ => Ok(vec![]),
        }
    }
}

/// `$1..$n` in order, with the types DataFusion inferred.
fn parameter_types(plan: &LogicalPlan) -> Result<Vec<Option<DataType>>, QueryError> {
    let types = plan.get_parameter_types()?;
    let mut ordered: Vec<(usize, Option<DataType>)> = types
        .into_iter()
        .filter_map(|(k, v)| {
            k.trim_start_matches('$')
                .parse::<usize>()
                .ok()
                .map(|i| (i, v))
        })
        .collect();
    ordered.sort_by_key(|(i, _)| *i);
    Ok(ordered.into_iter().map(|(_, t)| t).collect())
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    /// As pgwire's, except that a parameter the client called `unknown` is described with the
    /// type the server found for it, as PostgreSQL does (`$1::int` is an int4).
    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let server = self.parser.get_parameter_types(&target.statement)?;
        let given = &target.parameter_types;
        let params = (0..given.len().max(server.len()))
            .map(|i| {
                given
                    .get(i)
                    .cloned()
                    .flatten()
                    .filter(|t| *t != Type::UNKNOWN)
                    .or_else(|| server.get(i).cloned())
                    .unwrap_or(Type::UNKNOWN)
            })
            .collect();
        let columns = self.parser.get_result_schema(&target.statement, None)?;
        Ok(DescribeStatementResponse::new(params, columns))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self.cell.get(client)?;
        session.set_block(block_of(client.transaction_status()));
        let cancels = self.cell.cancel_requests(client);
        let format = &portal.result_column_format;
        let result = match &portal.statement.statement {
            Prepared::Planned {
                stmt, plan, params, ..
            } => {
                let types: Vec<Option<&DataType>> = params.iter().map(|t| t.as_ref()).collect();
                let values = parameter_values(portal, &types)?;
                let plan = plan
                    .as_ref()
                    .clone()
                    .replace_params_with_values(&values)
                    .map_err(|e| pg_error(&QueryError::DataFusion(e)))?;
                let run = async {
                    session.admit_planned()?;
                    session.execute_planned(stmt, plan).await
                };
                match executed(run, cancels).await {
                    Ok(outcome) => {
                        let stmt = Stmt::Sql(stmt.clone());
                        self.respond(client, &session, &stmt, outcome, format).await
                    }
                    Err(e) => Err(Failure::from(e)),
                }
            }
            Prepared::Fetch { stmt, .. } | Prepared::Other(stmt) => {
                match executed(session.execute(stmt), cancels).await {
                    Ok(outcome) => {
                        let response = self.respond(client, &session, stmt, outcome, format).await;
                        if response.is_ok() {
                            cursor_portal(client, &session, stmt);
                        }
                        response
                    }
                    Err(e) => Err(Failure::from(e)),
                }
            }
        };
        drop_cursor_portals(client, &session);
        result.map_err(Failure::into_pg)
    }
}

/// After a DECLARE: a portal of the cursor's name, so that a client may Describe it (as
/// psycopg does to learn a server-side cursor's columns) or Execute it (the rest of its rows).
fn cursor_portal<C>(client: &mut C, session: &Session, stmt: &Stmt)
where
    C: ClientPortalStore,
    C::PortalStore: PortalStore<Statement = Prepared>,
{
    let Stmt::Cursor(CursorStmt::Declare { name, .. }) = stmt else {
        return;
    };
    let Some(info) = session.cursor(name) else {
        return;
    };
    let fetch = Stmt::Cursor(CursorStmt::Fetch {
        name: name.clone(),
        count: Count::All,
        move_only: false,
    });
    let schema = result_names(session, &fetch, &info.schema);
    let statement = StoredStatement::new(
        name.clone(),
        Prepared::Fetch {
            stmt: Box::new(fetch),
            schema,
        },
        Vec::new(),
    );
    let portal = Portal::new_cursor(name.clone(), Arc::new(statement));
    client.portal_store().put_portal(Arc::new(portal));
}

/// A statement's outcome, run under [`guarded`], its rows ended by the connection's next
/// cancel request.
async fn executed(
    work: impl std::future::Future<Output = Result<Outcome, QueryError>>,
    requests: watch::Receiver<u64>,
) -> Result<Outcome, QueryError> {
    Ok(match guarded(work).await? {
        Outcome::Rows { schema, stream } => Outcome::Rows {
            schema,
            stream: super::cancel::cancellable(stream, requests),
        },
        Outcome::CopyOut(copy) => Outcome::CopyOut(CopyOut {
            stream: super::cancel::cancellable(copy.stream, requests),
            ..copy
        }),
        other => other,
    })
}
