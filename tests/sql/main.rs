//! Runs the sqllogictest suites in `sql/*.slt` through the real pgwire endpoint of a real
//! `porpoise standalone` process, with tokio-postgres as the client. Each file gets a fresh server
//! (a fresh home directory), so files never see each other's databases.
//!
//! Rendering follows psql's text output, taken verbatim from the simple query protocol: NULL is
//! `NULL`, an empty string is `(empty)` (whitespace is normalised away by the runner, so an empty
//! string would otherwise be invisible), booleans are whatever the server sends (`t`/`f`).
//! An error is rendered as `<SQLSTATE>: <message>`, so a record can assert the SQLSTATE with
//! `statement error 42P01: .*nosuch` (the runner matches the regex anywhere in that text) or with
//! the runner's own `statement error (42P01)` form.
//!
//! Records run as the admin user (`admin`/`123456`) unless preceded by a `connection NAME` line:
//! that record then runs on a session of its own logged in as user `NAME` with the password
//! `NAME_pw` (create the user with that password first, e.g.
//! `create user alice with password 'alice_pw'`). Sessions are opened on first use and kept for
//! the rest of the file; `connection default` is the admin session.
//!
//! Every record of a file runs even after an earlier one failed; the test then fails naming the
//! file and each failing record with its line. Run with `cargo test --test sql`, or one file with
//! `cargo test --test sql -- dml`.

#[path = "../common/mod.rs"]
mod common;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{first_row, TestServer, ADMIN_PASSWORD, ADMIN_USER};
use sqllogictest::{AsyncDB, Connection, DBOutput, DefaultColumnType, Record, Runner};
use tokio_postgres::SimpleQueryMessage;

/// A statement still running after this long fails the record (the server is probably hung);
/// the session is replaced by a new connection so the rest of the file can still run.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// One session on the server under test.
struct Porpoise {
    url: String,
    client: tokio_postgres::Client,
}

/// A failed statement as the test sees it.
#[derive(Debug)]
struct SqlError {
    /// The SQLSTATE of a server error; `None` for connection failures and timeouts.
    sqlstate: Option<String>,
    message: String,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SqlError {}

impl From<tokio_postgres::Error> for SqlError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => SqlError {
                sqlstate: Some(db.code().code().to_owned()),
                message: db.message().to_owned(),
            },
            None => SqlError {
                sqlstate: None,
                message: format!(
                    "client error, no SQLSTATE (did the server drop the session?): {e}"
                ),
            },
        }
    }
}

impl Porpoise {
    async fn connect(url: String) -> Result<Self, SqlError> {
        let client = common::connect(&url).await?;
        Ok(Porpoise { url, client })
    }

    /// Replaces a session that timed out or lost its connection.
    async fn reconnect(&mut self) -> Result<(), SqlError> {
        self.client = common::connect(&self.url).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl AsyncDB for Porpoise {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        if self.client.is_closed() {
            self.reconnect().await?;
        }
        let messages =
            match tokio::time::timeout(STATEMENT_TIMEOUT, self.client.simple_query(sql)).await {
                Ok(result) => result?,
                Err(_) => {
                    let reconnected = match self.reconnect().await {
                        Ok(()) => "the session was replaced".to_owned(),
                        Err(e) => format!("reconnecting failed too: {e}"),
                    };
                    return Err(SqlError {
                        sqlstate: None,
                        message: format!(
                            "no answer within {STATEMENT_TIMEOUT:?} (server hung?); {reconnected}"
                        ),
                    });
                }
            };
        let mut columns = None;
        let mut rows = Vec::new();
        let mut count = 0;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(cols) => columns = Some(cols.len()),
                SimpleQueryMessage::Row(row) => rows.push(
                    (0..row.len())
                        .map(|i| match row.get(i) {
                            None => "NULL".to_owned(),
                            Some("") => "(empty)".to_owned(),
                            Some(v) => v.to_owned(),
                        })
                        .collect(),
                ),
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        Ok(match columns {
            Some(n) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; n],
                rows,
            },
            None => DBOutput::StatementComplete(count),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "porpoise"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await
    }

    fn error_sql_state(err: &SqlError) -> Option<String> {
        err.sqlstate.clone()
    }
}

fn sql_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sql")
}

/// The password of the user a `connection NAME` record logs in as.
fn password_of(user: &str) -> String {
    format!("{user}_pw")
}

/// The connection a record runs on; `None` for records that run no SQL.
fn connection_of<T: sqllogictest::ColumnType>(record: &Record<T>) -> Option<&Connection> {
    match record {
        Record::Statement { connection, .. }
        | Record::Query { connection, .. }
        | Record::Let { connection, .. } => Some(connection),
        _ => None,
    }
}

/// Runs `sql/<name>.slt` against a fresh server and panics listing every failed record.
async fn run_slt_file(name: &str) {
    let path = sql_dir().join(format!("{name}.slt"));
    let records = sqllogictest::parse_file::<DefaultColumnType>(&path)
        .unwrap_or_else(|e| panic!("{}: cannot parse: {e}", path.display()));
    let mut server = tokio::task::spawn_blocking(TestServer::start)
        .await
        .expect("start the server");
    // sqllogictest opens a named session the first time a record uses it but does not tell
    // the factory the name, so the loop below leaves the user of the next record here.
    let next_user = std::sync::Arc::new(std::sync::Mutex::new(ADMIN_USER.to_owned()));
    let port = server.port();
    let mut runner = Runner::new({
        let next_user = next_user.clone();
        move || {
            let user = next_user
                .lock()
                .map(|u| u.clone())
                .unwrap_or_else(|e| e.into_inner().clone());
            let password = if user == ADMIN_USER {
                ADMIN_PASSWORD.to_owned()
            } else {
                password_of(&user)
            };
            Porpoise::connect(common::url(port, &user, &password))
        }
    });

    let total = records
        .iter()
        .filter(|r| matches!(r, Record::Statement { .. } | Record::Query { .. }))
        .count();
    let mut failures = Vec::new();
    let mut log_seen = 0;
    for record in records {
        let is_sql = matches!(record, Record::Statement { .. } | Record::Query { .. });
        if let Some(connection) = connection_of(&record) {
            let user = match connection {
                Connection::Default => ADMIN_USER.to_owned(),
                Connection::Named(name) => name.clone(),
            };
            if let Ok(mut next) = next_user.lock() {
                *next = user;
            }
        }
        let result = runner.run_async(record).await;
        // A session task that panicked only closes the connection: show the panic with the
        // record that caused it.
        let log = server.log();
        let panics = panics_in(log.get(log_seen..).unwrap_or_default());
        log_seen = log.len();
        match result {
            Err(e) => failures.push(format!("{}{panics}", e.display(false))),
            Ok(_) if !panics.is_empty() => {
                failures.push(format!("the server panicked while this file ran:{panics}"))
            }
            Ok(_) => {}
        }
        if is_sql {
            if let Some(status) = server.exit_status() {
                failures.push(format!(
                    "the server exited ({status}); the rest of the file was not run"
                ));
                break;
            }
        }
    }
    runner.shutdown_async().await;
    if failures.is_empty() {
        return;
    }
    let crashed = server.exit_status().is_some();
    let mut report = format!(
        "{}: {} of {total} records failed\n\n{}",
        path.display(),
        failures.len(),
        failures.join("\n\n")
    );
    if crashed {
        let log = server.log();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        report.push_str("\n\n--- end of the server log ---\n");
        for line in tail.into_iter().rev() {
            report.push_str(line);
            report.push('\n');
        }
    }
    panic!("{report}");
}

/// The `panicked at` lines of a server log, with the panic message that follows each one.
fn panics_in(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if line.contains("panicked at") {
            out.push_str("\n[server] ");
            out.push_str(line.trim());
            if let Some(message) = lines.get(i + 1) {
                out.push_str("\n[server] ");
                out.push_str(message.trim());
            }
        }
    }
    out
}

/// One test per suite, so a failure names the file and `cargo test --test sql -- NAME` runs one.
macro_rules! slt_files {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                run_slt_file(stringify!($name)).await;
            }
        )*

        const SLT_FILES: &[&str] = &[$(stringify!($name)),*];
    };
}

slt_files!(ddl, dml, queries, types, errors, users, privileges, not_null);

/// A new `sql/*.slt` file must be added to `slt_files!` above, or it would silently never run.
#[test]
fn every_slt_file_is_run() {
    let mut on_disk: Vec<String> = std::fs::read_dir(sql_dir())
        .expect("read sql/")
        .filter_map(|entry| {
            let path = entry.expect("read sql/ entry").path();
            (path.extension()? == "slt")
                .then(|| path.file_stem()?.to_str().map(str::to_owned))
                .flatten()
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SLT_FILES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "sql/*.slt files and the slt_files! list differ"
    );
}

// Two things a `.slt` record cannot see: the column names and the type OIDs of a result. Drivers
// bind results by name and decode them by OID, so both are checked through the client directly.

/// A server with one small table, for the wire-level tests below.
async fn server_with_trades() -> (TestServer, tokio_postgres::Client) {
    let server = tokio::task::spawn_blocking(TestServer::start)
        .await
        .expect("start the server");
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://wire" partitioned by VALUE(2023.01.01..2023.01.02);
               create table "dfs://wire"."trades"(TradeDate DATE, SecurityID SYMBOL, Price DOUBLE,
                   Qty INT, Amount LONG, Flag BOOL, At TIMESTAMP, Cost numeric(10,2))
                   partitioned by TradeDate;
               insert into "dfs://wire"."trades" values
                   ('2023-01-01', 'A', 1.5, 10, 100, true, '2023-01-01 09:30:00', 1.25);"#,
        )
        .await
        .expect("create the table");
    (server, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_columns_are_named_like_postgres() {
    let (_server, client) = server_with_trades().await;
    let messages = client
        .simple_query(
            r#"select count(*), sum(Qty), max(Price), Qty + 1, SecurityID, Price as p
               from "dfs://wire"."trades" group by SecurityID, Qty, Price"#,
        )
        .await
        .expect("query");
    let names: Vec<String> = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::RowDescription(cols) => {
                Some(cols.iter().map(|c| c.name().to_owned()).collect())
            }
            _ => None,
        })
        .expect("a row description");
    assert_eq!(
        names,
        ["count", "sum", "max", "?column?", "SecurityID", "p"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_columns_carry_postgres_type_oids() {
    use tokio_postgres::types::Type;
    let (_server, client) = server_with_trades().await;
    let statement = client
        .prepare(
            r#"select TradeDate, SecurityID, Price, Qty, Amount, Flag, At, Cost, count(*) over ()
               from "dfs://wire"."trades""#,
        )
        .await
        .expect("prepare");
    let types: Vec<(&str, Type)> = statement
        .columns()
        .iter()
        .map(|c| (c.name(), c.type_().clone()))
        .collect();
    assert_eq!(
        types,
        [
            ("TradeDate", Type::DATE),
            ("SecurityID", Type::TEXT),
            ("Price", Type::FLOAT8),
            ("Qty", Type::INT4),
            ("Amount", Type::INT8),
            ("Flag", Type::BOOL),
            ("At", Type::TIMESTAMP),
            ("Cost", Type::NUMERIC),
            ("count", Type::INT8),
        ]
    );
    // The binary values decode with those types.
    let row = client
        .query_one(
            r#"select SecurityID, Price, Qty, Amount, Flag from "dfs://wire"."trades""#,
            &[],
        )
        .await
        .expect("query");
    assert_eq!(row.get::<_, String>(0), "A");
    assert_eq!(row.get::<_, f64>(1), 1.5);
    assert_eq!(row.get::<_, i32>(2), 10);
    assert_eq!(row.get::<_, i64>(3), 100);
    assert!(row.get::<_, bool>(4));
}

/// A `numeric` decoded from PostgreSQL's binary form into its text, independently of the
/// server's encoder: base-10000 digits, the weight of the first, the sign and the display scale.
#[derive(Debug, PartialEq)]
struct Numeric(String);

impl<'a> tokio_postgres::types::FromSql<'a> for Numeric {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let word = |i: usize| i16::from_be_bytes([raw[2 * i], raw[2 * i + 1]]);
        let (ndigits, weight, sign, dscale) = (word(0), word(1), word(2) as u16, word(3) as usize);
        let digits: Vec<i16> = (0..ndigits as usize).map(|i| word(4 + i)).collect();
        // Integer digits: base-10000 groups of weight >= 0.
        let mut int = String::new();
        for w in (0..=weight.max(0)).rev() {
            let i = (weight - w) as usize;
            let d = if weight >= 0 {
                digits.get(i).copied().unwrap_or(0)
            } else {
                0
            };
            int.push_str(&format!("{d:04}"));
        }
        let int = int.trim_start_matches('0');
        let mut frac = String::new();
        for i in 0..dscale.div_ceil(4) {
            let at = weight as isize + 1 + i as isize;
            let d = if at >= 0 {
                digits.get(at as usize).copied().unwrap_or(0)
            } else {
                0
            };
            frac.push_str(&format!("{d:04}"));
        }
        frac.truncate(dscale);
        let sign = if sign == 0x4000 { "-" } else { "" };
        let int = if int.is_empty() { "0" } else { int };
        let point = if dscale > 0 { "." } else { "" };
        Ok(Numeric(format!("{sign}{int}{point}{frac}")))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::NUMERIC
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numerics_keep_all_their_digits_in_text_and_binary() {
    let (_server, client) = server_with_trades().await;
    let sql = r#"select 99999999999999999999999999999999999999, cast(-0.0001 as decimal(10,4)),
                        Cost, array_agg(cast(-12345678901234567890123456789.5 as decimal(38,1))),
                        array_agg(cast(NULL as decimal(5,2))),
                        coalesce(-100000000000000000000000000000000000000.5)
                 from "dfs://wire"."trades" group by Cost"#;
    // Binary, as tokio-postgres asks for results of a prepared statement.
    let row = client.query_one(sql, &[]).await.expect("query");
    assert_eq!(
        row.get::<_, Numeric>(0),
        Numeric("99999999999999999999999999999999999999".into())
    );
    assert_eq!(row.get::<_, Numeric>(1), Numeric("-0.0001".into()));
    assert_eq!(row.get::<_, Numeric>(2), Numeric("1.25".into()));
    assert_eq!(
        row.get::<_, Vec<Numeric>>(3),
        [Numeric("-12345678901234567890123456789.5".into())]
    );
    assert_eq!(row.get::<_, Vec<Option<Numeric>>>(4), [None]);
    // 40 digits: a DECIMAL256.
    assert_eq!(
        row.get::<_, Numeric>(5),
        Numeric("-100000000000000000000000000000000000000.5".into())
    );
    // Text, as psql gets them.
    let messages = client.simple_query(sql).await.expect("query");
    let row = first_row(&messages);
    let texts: Vec<&str> = (0..6).map(|i| row.get(i).expect("not NULL")).collect();
    assert_eq!(
        texts,
        [
            "99999999999999999999999999999999999999",
            "-0.0001",
            "1.25",
            "{-12345678901234567890123456789.5}",
            "{NULL}",
            "-100000000000000000000000000000000000000.5"
        ]
    );
}

/// A query that would run for hours: counting ten billion generated rows.
const ENDLESS: &str = "select count(*) from generate_series(1, 10000000000)";

/// Runs `query` while sending `client`'s cancel request every 100 ms (a request that comes
/// before the query starts is ignored, as in PostgreSQL), until the query ends with 57014.
/// Returns how many requests were sent.
async fn cancel<F>(client: &tokio_postgres::Client, query: F) -> usize
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    let token = client.cancel_token();
    tokio::pin!(query);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut sent = 0;
    let result = loop {
        tokio::select! {
            result = &mut query => break result,
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                assert!(tokio::time::Instant::now() < deadline, "the query was not cancelled");
                token
                    .cancel_query(tokio_postgres::NoTls)
                    .await
                    .expect("send the cancel request");
                sent += 1;
            }
        }
    };
    let e = result.expect_err("the query should be cancelled");
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("no ErrorResponse: {e:?}"));
    assert_eq!(db.code().code(), "57014");
    assert_eq!(db.message(), "canceling statement due to user request");
    sent
}

/// `sql`'s first value on `client`. A cancel request is processed on a connection of its own,
/// so one sent while an earlier query ran may arrive after that query ended and cancel this one
/// (PostgreSQL has the same race): `sql` runs again then, at most `stale` times.
async fn first_value_despite(client: &tokio_postgres::Client, sql: &str, stale: usize) -> String {
    for _ in 0..=stale {
        match client.simple_query(sql).await {
            Ok(messages) => return first_row(&messages).get(0).expect("not NULL").to_owned(),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => {}
            Err(e) => panic!("{sql}: {e:?}"),
        }
    }
    panic!("{sql} was cancelled more often than requests were sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_stops_the_running_query_and_the_connection_goes_on() {
    let (_server, client) = server_with_trades().await;
    let count = "select count(*) from \"dfs://wire\".\"trades\"";
    // The simple protocol, then the extended one.
    let simple = async { client.simple_query(ENDLESS).await.map(drop) };
    let sent = cancel(&client, simple).await;
    assert_eq!(first_value_despite(&client, count, sent).await, "1");
    let extended = async { client.query(ENDLESS, &[]).await.map(drop) };
    let sent = cancel(&client, extended).await;
    assert_eq!(first_value_despite(&client, count, sent).await, "1");
}

// Privileges on the paths a `.slt` record cannot drive: COPY data and prepared statements.

/// `alice` (password `alice_pw`) with no grants, and her session.
async fn server_with_alice() -> (TestServer, tokio_postgres::Client, tokio_postgres::Client) {
    let (server, admin) = server_with_trades().await;
    admin
        .batch_execute("create user alice with password 'alice_pw'")
        .await
        .expect("create alice");
    let alice = server
        .client_as("alice", &password_of("alice"))
        .await
        .expect("alice logs in");
    (server, admin, alice)
}

fn sqlstate(e: &tokio_postgres::Error) -> Option<&str> {
    e.as_db_error().map(|db| db.code().code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_needs_write() {
    use futures::SinkExt;
    let (server, admin, alice) = server_with_alice().await;
    let sql = r#"copy "dfs://wire"."trades"(TradeDate, SecurityID) from stdin with (format csv)"#;
    let err = alice.copy_in::<_, bytes::Bytes>(sql).await.err();
    assert_eq!(
        err.as_ref().and_then(sqlstate),
        Some("42501"),
        "COPY without WRITE: {err:?}"
    );

    admin
        .batch_execute(r#"grant write on database "dfs://wire" to alice"#)
        .await
        .expect("grant");
    // A new session: after a COPY refused at Execute, tokio-postgres and the server disagree
    // about the next message (true of any COPY error at that point, not of privileges).
    let alice = server
        .client_as("alice", &password_of("alice"))
        .await
        .expect("alice logs in again");
    let sink = alice.copy_in(sql).await.expect("COPY with WRITE starts");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"2023-01-02,B\n2023-01-02,C\n"))
        .await
        .expect("send");
    assert_eq!(sink.as_mut().finish().await.expect("COPY commits"), 2);
    let count: i64 = admin
        .query_one(r#"select count(*) from "dfs://wire"."trades""#, &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_are_checked_when_they_run() {
    let (_server, admin, alice) = server_with_alice().await;
    let select = r#"select count(*) from "dfs://wire"."trades" where Qty > $1"#;
    let err = alice.query_one(select, &[&0i32]).await.err();
    assert_eq!(err.as_ref().and_then(sqlstate), Some("42501"), "{err:?}");

    admin
        .batch_execute(r#"grant read on database "dfs://wire" to alice"#)
        .await
        .expect("grant");
    let statement = alice.prepare(select).await.expect("prepare");
    let count: i64 = alice
        .query_one(&statement, &[&0i32])
        .await
        .expect("select with READ")
        .get(0);
    assert_eq!(count, 1);

    // A statement prepared while the grant held is refused once it is revoked.
    admin
        .batch_execute(r#"revoke read on database "dfs://wire" from alice"#)
        .await
        .expect("revoke");
    let err = alice.query_one(&statement, &[&0i32]).await.err();
    assert_eq!(err.as_ref().and_then(sqlstate), Some("42501"), "{err:?}");

    let insert = r#"insert into "dfs://wire"."trades"(TradeDate, Qty) values ('2023-01-01', $1)"#;
    let err = alice.execute(insert, &[&5i32]).await.err();
    assert_eq!(err.as_ref().and_then(sqlstate), Some("42501"), "{err:?}");
}
