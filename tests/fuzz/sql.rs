//! SQL text: statements from a grammar of porpoise's dialect (DolphinDB DDL, users and grants,
//! DML, queries over `loadTable` and the catalog, the built-in replication functions), then
//! mutated (truncated, tokens deleted, repeated, swapped or inserted, odd unicode, huge
//! numbers), plus deeply nested and very long expressions.
//!
//! Properties: the pure parsers (statement splitting, the DDL and user-statement parsers,
//! sqlparser with the PostgreSQL-compatibility rewrites) never panic; over pgwire every
//! statement gets a result or an ErrorResponse with a SQLSTATE that is not an internal error
//! (XX000), the connection keeps answering, and the server keeps running.

use porpoise::query::parse::{ddl, split, users};
use porpoise::query::{parse_budget, pg_compat};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use tokio_postgres::error::SqlState;

use super::{check, runner, runtime, shown, still_answers, Fuzzed, CASE_TIMEOUT};

/// Database paths the statements use; a few, so that statements meet each other's objects.
const DATABASES: &[&str] = &["dfs://fz1", "dfs://fz2", "dfs://fz3"];
const TABLES: &[&str] = &["t1", "t2", "t3"];
const COLUMNS: &[&str] = &["a", "b", "c", "d", "e", "f", "SecurityID", "zz"];
/// Never `admin`: a statement that changed its password would lock the test out.
const USERS: &[&str] = &["u1", "u2", "U3"];

const TYPES: &[&str] = &[
    "BOOL",
    "CHAR",
    "SHORT",
    "INT",
    "LONG",
    "FLOAT",
    "DOUBLE",
    "SYMBOL",
    "STRING",
    "BLOB",
    "DATE",
    "MONTH",
    "TIME",
    "MINUTE",
    "SECOND",
    "NANOTIME",
    "DATETIME",
    "TIMESTAMP",
    "NANOTIMESTAMP",
    "DECIMAL32(2)",
    "DECIMAL64(4)",
    "DECIMAL128(40)",
    "numeric(10,2)",
    "numeric(99999999999,2)",
    "decimal(-1)",
    "varchar(20)",
    "char(3)",
    "int4",
    "bigint",
    "float8",
    "double precision",
    "text",
    "timestamp",
    "timestamp(3)",
    "timestamp(99)",
    "time(0)",
    "timestamp with time zone",
    "date",
    "bytea",
    "uuid",
    "int[]",
    "NOSUCHTYPE",
];

/// Scheme bodies of partition levels.
const SCHEMES: &[&str] = &[
    "VALUE(2023.01.01..2023.01.05)",
    "VALUE(2023.01M..2023.03M)",
    "VALUE(1..5)",
    "VALUE(`A`B`C)",
    "VALUE('a', 'b')",
    "VALUE([DATE '2023-01-01', DATE '2023-01-02'])",
    "VALUE(2023.01.05..2023.01.01)",
    "VALUE(0..999999999999)",
    "RANGE(0 5 10)",
    "RANGE(2023.01.01 2023.06.01 2024.01.01)",
    "RANGE([1, 2])",
    "RANGE(5)",
    "LIST([`A`B, `C])",
    "LIST([[1, 2], [3]])",
    "LIST([])",
    "HASH([SYMBOL, 4])",
    "HASH([INT, 3])",
    "HASH([DOUBLE, 0])",
    "HASH([INT, -1])",
    "HASH([DATE, 99999999999999999999])",
];

const FUNCTIONS: &[&str] = &[
    "abs",
    "upper",
    "lower",
    "length",
    "substr",
    "round",
    "coalesce",
    "sqrt",
    "ln",
    "concat",
    "date_trunc",
    "to_timestamp",
    "nullif",
    "greatest",
    "md5",
    "now",
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "first_value",
    "array_agg",
    "string_agg",
    "getControllerAlias",
    "getNodeAlias",
    "schema",
    "setDatabaseForClusterReplication",
    "setDatabaseClusterReplicationExecutionSet",
    "startClusterReplication",
    "stopClusterReplication",
    "skipClusterReplicationTask",
    "removeClusterReplicationSlave",
    "rpc",
    "nosuchfunction",
];

const TABLE_FUNCTIONS: &[&str] = &[
    "getMasterReplicationStatus",
    "getSlaveReplicationStatus",
    "getRecentSlaveReplicationInfo",
    "getSlaveReplicationQueueStatus",
    "getSlaveReplicationExecutionStatus",
    "getClusterReplicationMetrics",
    "getDatabaseClusterReplicationStatus",
    "getClusterReplicationLag",
    "schema",
    "loadTable",
];

/// Text spliced into statements by the mutations: keywords, punctuation that opens or closes
/// something, huge and odd numbers, and unicode that is easy to mishandle.
const SPLICES: &[&str] = &[
    "select",
    "from",
    "where",
    "create",
    "database",
    "table",
    "partitioned",
    "by",
    "VALUE",
    "RANGE",
    "LIST",
    "HASH",
    "drop",
    "alter",
    "truncate",
    "insert",
    "into",
    "values",
    "grant",
    "revoke",
    "user",
    "with",
    "password",
    "if",
    "not",
    "exists",
    "null",
    "loadTable",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    ".",
    "..",
    "=",
    "::",
    "'",
    "\"",
    "`",
    "$$",
    "$1",
    "/*",
    "*/",
    "--",
    "\\",
    "E'\\x",
    "99999999999999999999999999999999999999",
    "-9223372036854775809",
    "9223372036854775808",
    "2147483648",
    "1e400",
    "1e-400",
    "0.000000000000000000000000000000000000000001",
    "2023.13.45",
    "2023.02.29",
    "9999.12.31",
    "0000.01.01",
    "2023.00M",
    "24:00:00",
    "NaN",
    "Infinity",
    "é",
    "ß",
    "𝕏",
    "🦀",
    "\u{200b}",
    "\u{202e}",
    "\u{feff}",
    "\u{301}",
    "\u{ffff}",
    "\u{10ffff}",
    "\u{7f}",
    "\u{1}",
    "\t",
    "\r\n",
];

fn pick(items: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    prop::sample::select(items).prop_map(str::to_owned)
}

fn db() -> impl Strategy<Value = String> + Clone {
    pick(DATABASES)
}

fn quoted_db() -> impl Strategy<Value = String> + Clone {
    db().prop_map(|d| format!("\"{d}\""))
}

/// A table reference in one of the spellings porpoise accepts.
fn table_ref() -> impl Strategy<Value = String> + Clone {
    (db(), pick(TABLES), 0..5u8).prop_map(|(d, t, form)| match form {
        0 => format!("\"{d}\".\"{t}\""),
        1 => format!("\"{d}\".{t}"),
        2 => format!("'{d}'.'{t}'"),
        3 => format!("loadTable('{d}', '{t}')"),
        _ => t,
    })
}

fn column() -> impl Strategy<Value = String> + Clone {
    pick(COLUMNS)
}

/// A string literal body: printable unicode, quotes doubled.
fn string_literal() -> impl Strategy<Value = String> + Clone {
    "\\PC{0,12}".prop_map(|s| format!("'{}'", s.replace('\'', "''")))
}

fn literal() -> BoxedStrategy<String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<i32>().prop_map(|n| n.to_string()),
        (0u8..5).prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "[0-9]{1,60}",
        "[0-9]{1,30}\\.[0-9]{1,30}",
        string_literal(),
        (1900u32..2100, 1u32..13, 1u32..29)
            .prop_map(|(y, m, d)| format!("DATE '{y:04}-{m:02}-{d:02}'")),
        (1900u32..2100, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y}.{m:02}.{d:02}")),
        Just("TIMESTAMP '2023-01-02 09:30:00.123'".to_owned()),
        Just("2023.01.02T09:30:00".to_owned()),
        Just("NULL".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("`AAPL".to_owned()),
        Just("E'\\x41\\n'".to_owned()),
        Just("$$dollar$$".to_owned()),
        Just("x'0a0b'".to_owned()),
        Just("$1".to_owned()),
    ]
    .boxed()
}

fn expr() -> BoxedStrategy<String> {
    let leaf = prop_oneof![3 => literal(), 2 => column()];
    leaf.prop_recursive(4, 24, 4, |inner| {
        let binop = pick(&[
            "+", "-", "*", "/", "%", "=", "<>", "<", ">=", "and", "or", "||", "like", "~",
        ]);
        prop_oneof![
            (inner.clone(), binop, inner.clone()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (pick(FUNCTIONS), prop::collection::vec(inner.clone(), 0..4))
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            (inner.clone(), pick(TYPES)).prop_map(|(e, t)| format!("cast({e} as {t})")),
            (inner.clone(), pick(TYPES)).prop_map(|(e, t)| format!("{e}::{t}")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("case when {a} then {b} else {c} end")),
            (inner.clone(), prop::collection::vec(inner.clone(), 1..4))
                .prop_map(|(a, l)| format!("{a} in ({})", l.join(", "))),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("{a} between {b} and {c}")),
            inner.clone().prop_map(|e| format!("not {e}")),
            inner.clone().prop_map(|e| format!("- {e}")),
            inner.clone().prop_map(|e| format!("{e} is null")),
            inner.prop_map(|e| format!("(select {e})")),
        ]
    })
    .boxed()
}

fn column_def() -> impl Strategy<Value = String> {
    (
        column(),
        pick(TYPES),
        prop::sample::select(vec![
            "",
            " NOT NULL",
            " NULL",
            " [comment=\"x\", compress=\"delta\"]",
        ]),
    )
        .prop_map(|(c, t, extra)| format!("{c} {t}{extra}"))
}

fn create_database() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        quoted_db(),
        prop::collection::vec(pick(SCHEMES), 1..4),
        prop::sample::select(vec![
            "",
            ", engine='TSDB'",
            ", engine='OLAP', atomic='TRANS'",
            ", chunkGranularity='TABLE'",
            ", engine=`PKEY",
            ", nosuchoption=1",
        ]),
    )
        .prop_map(|(ine, d, levels, opts)| {
            let ine = if ine { "if not exists " } else { "" };
            format!(
                "create database {ine}{d} partitioned by {}{opts}",
                levels.join(", ")
            )
        })
}

fn create_table() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        table_ref(),
        prop::collection::vec(column_def(), 1..7),
        prop::collection::vec(column(), 0..4),
        prop::sample::select(vec![
            "",
            ", sortColumns=`a`b",
            ", keepDuplicates=ALL",
            ", nosuch=`x",
        ]),
    )
        .prop_map(|(ine, t, cols, parts, opts)| {
            let ine = if ine { "if not exists " } else { "" };
            let parts = if parts.is_empty() {
                String::new()
            } else {
                format!(" partitioned by {}", parts.join(", "))
            };
            format!("create table {ine}{t}({}){parts}{opts}", cols.join(", "))
        })
}

fn ddl_statement() -> BoxedStrategy<String> {
    prop_oneof![
        3 => create_database(),
        4 => create_table(),
        1 => (any::<bool>(), quoted_db()).prop_map(|(ie, d)| {
            format!("drop database {}{d}", if ie { "if exists " } else { "" })
        }),
        1 => (any::<bool>(), table_ref()).prop_map(|(ie, t)| {
            format!("drop table {}{t}", if ie { "if exists " } else { "" })
        }),
        1 => (any::<bool>(), table_ref())
            .prop_map(|(kw, t)| format!("truncate {}{t}", if kw { "table " } else { "" })),
        1 => (table_ref(), column_def()).prop_map(|(t, c)| format!("alter table {t} add column {c}")),
        1 => (table_ref(), column()).prop_map(|(t, c)| format!("alter table {t} drop {c}")),
        1 => (table_ref(), column(), column())
            .prop_map(|(t, a, b)| format!("alter table {t} rename column {a} to {b}")),
    ]
    .boxed()
}

fn user_statement() -> BoxedStrategy<String> {
    let privs = prop::collection::vec(
        pick(&[
            "read",
            "write",
            "ddl",
            "all",
            "all privileges",
            "select",
            "insert",
            "DB_READ",
            "TABLE_WRITE",
            "DBOBJ_CREATE",
            "bogus",
        ]),
        1..4,
    )
    .prop_map(|p| p.join(", "));
    let target = prop_oneof![
        quoted_db().prop_map(|d| format!("database {d}")),
        quoted_db().prop_map(|d| format!("schema {d}")),
        quoted_db().prop_map(|d| format!("all tables in schema {d}")),
        Just("all databases".to_owned()),
        Just("\"*\"".to_owned()),
        db().prop_map(|d| format!("'{d}'")),
    ];
    prop_oneof![
        (pick(USERS), string_literal(), any::<bool>()).prop_map(|(u, p, s)| format!(
            "create user {u} with password {p}{}",
            if s { " superuser" } else { "" }
        )),
        (pick(USERS), string_literal()).prop_map(|(u, p)| format!("alter user {u} password {p}")),
        pick(USERS).prop_map(|u| format!("drop user if exists {u}")),
        (privs.clone(), target.clone(), pick(USERS))
            .prop_map(|(p, t, u)| format!("grant {p} on {t} to {u}")),
        (privs, target, pick(USERS)).prop_map(|(p, t, u)| format!("revoke {p} on {t} from {u}")),
    ]
    .boxed()
}

fn dml_statement() -> BoxedStrategy<String> {
    let row = prop::collection::vec(expr(), 1..7).prop_map(|v| format!("({})", v.join(", ")));
    prop_oneof![
        (table_ref(), prop::collection::vec(row, 1..4))
            .prop_map(|(t, rows)| format!("insert into {t} values {}", rows.join(", "))),
        (
            table_ref(),
            prop::collection::vec(column(), 1..4),
            table_ref()
        )
            .prop_map(|(t, cols, from)| format!(
                "insert into {t} ({}) select {} from {from}",
                cols.join(", "),
                cols.join(", ")
            )),
        (table_ref(), column(), expr(), expr())
            .prop_map(|(t, c, v, w)| format!("update {t} set {c} = {v} where {w}")),
        (table_ref(), expr()).prop_map(|(t, w)| format!("delete from {t} where {w}")),
    ]
    .boxed()
}

fn query_statement() -> BoxedStrategy<String> {
    let from = prop_oneof![
        4 => table_ref(),
        2 => (pick(TABLE_FUNCTIONS), prop::collection::vec(literal(), 0..3))
            .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
        1 => pick(&[
            "pg_catalog.pg_tables",
            "pg_catalog.pg_namespace",
            "pg_catalog.pg_class",
            "information_schema.tables",
            "information_schema.columns",
            "pg_roles",
        ]),
    ];
    prop_oneof![
        4 => (
            prop::collection::vec(expr(), 1..4),
            prop::option::of(from),
            prop::option::of(expr()),
            prop::option::of(column()),
            prop::option::of(any::<u32>()),
        )
            .prop_map(|(cols, from, w, order, limit)| {
                let mut s = format!("select {}", cols.join(", "));
                if let Some(f) = from {
                    s.push_str(&format!(" from {f}"));
                }
                if let Some(w) = w {
                    s.push_str(&format!(" where {w}"));
                }
                if let Some(c) = order {
                    s.push_str(&format!(" group by {c} order by {c}"));
                }
                if let Some(l) = limit {
                    s.push_str(&format!(" limit {l}"));
                }
                s
            }),
        1 => expr().prop_map(|e| format!("select {e}")),
        1 => (pick(FUNCTIONS), prop::collection::vec(literal(), 0..3))
            .prop_map(|(f, a)| format!("select {f}({})", a.join(", "))),
        1 => query_misc(),
    ]
    .boxed()
}

fn query_misc() -> BoxedStrategy<String> {
    prop_oneof![
        Just("begin".to_owned()),
        Just("commit".to_owned()),
        Just("rollback".to_owned()),
        Just("set datestyle = 'ISO'".to_owned()),
        Just("show tables".to_owned()),
        Just("show server_version".to_owned()),
        expr().prop_map(|e| format!("explain select {e}")),
        table_ref().prop_map(|t| format!("explain analyze select * from {t}")),
        Just("select $1".to_owned()),
        // COPY TO STDOUT answers with COPY data, which a query API does not take; a COPY to
        // a server-side file is refused.
        Just("copy \"dfs://fz1\".\"t1\" to '/porpoise-fuzz/never-written'".to_owned()),
        Just("vacuum".to_owned()),
        Just("create index i on t1(a)".to_owned()),
        Just("create view v as select 1".to_owned()),
        Just("listen x".to_owned()),
    ]
    .boxed()
}

/// Deep nesting and very long expressions: the shapes that exhaust a recursive parser,
/// planner or tree walk.
fn deep_statement() -> BoxedStrategy<String> {
    // Around the limits: 15 nested calls, 1000 levels of expression.
    let depth = prop_oneof![
        1usize..20,
        20usize..900,
        900usize..1_100,
        1_100usize..20_000
    ];
    (depth, 0u8..17)
        .prop_map(|(n, shape)| match shape {
            0 => format!("select {}1{}", "(".repeat(n), ")".repeat(n)),
            1 => format!("select 1{}", " + 1".repeat(n)),
            2 => format!("select {}1{}", "abs(".repeat(n), ")".repeat(n)),
            3 => format!("select {}true", "not ".repeat(n)),
            4 => format!(
                "select * from {}(select 1){}",
                "(select * from ".repeat(n),
                ") s".repeat(n)
            ),
            5 => format!(
                "create database \"dfs://deep\" partitioned by VALUE({}1{})",
                "[".repeat(n),
                "]".repeat(n)
            ),
            6 => format!(
                "select {}1{}",
                "case when true then ".repeat(n),
                " end".repeat(n)
            ),
            7 => format!("select 1 where 1 in ({})", vec!["1"; n].join(", ")),
            8 => format!("select 'a'{}", " || 'a'".repeat(n)),
            9 => format!("select true{}", " and true".repeat(n)),
            10 => format!(
                "insert into \"dfs://fz1\".\"t1\"(a) values {}",
                vec!["(1)"; n].join(", ")
            ),
            11 => format!(
                "update \"dfs://fz1\".\"t1\" set a = 1 where a = 1{}",
                " or a = 1".repeat(n)
            ),
            12 => format!("select {}1{}", "-(".repeat(n), ")".repeat(n)),
            13 => format!("select 1{}", " union all select 1".repeat(n)),
            14 => format!("select 1{}", "::int".repeat(n)),
            15 => format!(
                "select {}1{}",
                "CAST(CASE (".repeat(n.min(64)),
                ")".repeat(3 * n.min(64))
            ),
            _ => format!(
                "create table \"dfs://fz1\".\"wide\"({})",
                (0..n)
                    .map(|i| format!("c{i} INT"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .boxed()
}

/// A statement of the dialect, before mutation.
fn statement() -> BoxedStrategy<String> {
    prop_oneof![
        4 => ddl_statement(),
        2 => user_statement(),
        3 => dml_statement(),
        5 => query_statement(),
        1 => deep_statement(),
    ]
    .boxed()
}

/// One edit of a statement's whitespace-separated words (or of its text).
#[derive(Debug, Clone)]
enum Mutation {
    /// Cut the text at this char.
    Truncate(Index),
    Delete(Index),
    Repeat(Index),
    Swap(Index, Index),
    Insert(Index, String),
    Replace(Index, String),
    /// Random unicode (no NUL: the protocol cannot carry it in a query string).
    Noise(Index, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let splice = prop_oneof![3 => pick(SPLICES), 1 => pick(TYPES), 1 => pick(FUNCTIONS)];
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::Truncate),
        2 => any::<Index>().prop_map(Mutation::Delete),
        1 => any::<Index>().prop_map(Mutation::Repeat),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        3 => (any::<Index>(), splice.clone()).prop_map(|(i, s)| Mutation::Insert(i, s)),
        2 => (any::<Index>(), splice).prop_map(|(i, s)| Mutation::Replace(i, s)),
        1 => (any::<Index>(), "[^\\x00]{1,8}").prop_map(|(i, s)| Mutation::Noise(i, s)),
    ]
}

fn mutate(sql: &str, mutations: &[Mutation]) -> String {
    let mut words: Vec<String> = sql.split(' ').map(str::to_owned).collect();
    let mut cut = None;
    for m in mutations {
        let n = words.len().max(1);
        match m {
            Mutation::Truncate(i) => cut = Some(*i),
            Mutation::Delete(i) if !words.is_empty() => {
                words.remove(i.index(n));
            }
            Mutation::Repeat(i) if !words.is_empty() => {
                let w = words[i.index(n)].clone();
                words.insert(i.index(n), w);
            }
            Mutation::Swap(a, b) if !words.is_empty() => words.swap(a.index(n), b.index(n)),
            Mutation::Insert(i, s) => words.insert(i.index(n + 1).min(words.len()), s.clone()),
            Mutation::Replace(i, s) if !words.is_empty() => words[i.index(n)] = s.clone(),
            Mutation::Noise(i, s) if !words.is_empty() => {
                let w = &mut words[i.index(n)];
                let at = w.char_indices().nth(s.len() % (w.chars().count() + 1));
                w.insert_str(at.map_or(w.len(), |(p, _)| p), s);
            }
            _ => {}
        }
    }
    let text = words.join(" ");
    match cut {
        Some(i) => {
            let chars = text.chars().count();
            text.chars().take(i.index(chars + 1)).collect()
        }
        None => text,
    }
}

/// A statement, mutated half of the time.
pub fn fuzzed_sql() -> impl Strategy<Value = String> {
    (
        statement(),
        prop_oneof![
            1 => Just(Vec::new()),
            1 => prop::collection::vec(mutation(), 1..4),
        ],
    )
        .prop_map(|(sql, mutations)| mutate(&sql, &mutations))
}

/// The pure parsing steps a query string goes through before DataFusion plans it.
fn parse_in_process(sql: &str) {
    let parser = datafusion_pg_catalog::sql::PostgresCompatibilityParser::new();
    for piece in split::statements(sql) {
        let _ = users::parse(piece);
        let _ = ddl::parse_ddl(piece);
        if parse_budget::check(piece).is_err() {
            continue;
        }
        if let Ok(statements) = parser.parse(piece) {
            for mut s in statements {
                pg_compat::rewrite(&mut s);
                let _ = s.to_string();
            }
        }
    }
}

#[test]
fn parsers_never_panic() {
    check(&mut runner(3000), &fuzzed_sql(), |sql| {
        parse_in_process(&sql);
        Ok(())
    });
}

/// What the server answered to one query string, run as a simple query, then prepared and (if
/// it has no parameters) run again through the extended protocol.
async fn run_one(client: &tokio_postgres::Client, sql: &str) -> Result<(), TestCaseError> {
    run_simple(client, sql).await?;
    let prepared = tokio::time::timeout(CASE_TIMEOUT, client.prepare(sql))
        .await
        .map_err(|_| TestCaseError::fail("no answer to Parse within the deadline (a hang)"))?;
    let statement = match prepared {
        Ok(statement) => statement,
        Err(e) => return answered(sql, Err(e)),
    };
    if !statement.params().is_empty() {
        return Ok(());
    }
    // Bind and Execute, with results in binary (tokio-postgres asks for it).
    let executed = tokio::time::timeout(CASE_TIMEOUT, client.query(&statement, &[]))
        .await
        .map_err(|_| TestCaseError::fail("no answer to Execute within the deadline (a hang)"))?;
    answered(sql, executed.map(drop))
}

/// What the server answered to one query string run as a simple query.
async fn run_simple(client: &tokio_postgres::Client, sql: &str) -> Result<(), TestCaseError> {
    let answer = tokio::time::timeout(CASE_TIMEOUT, client.simple_query(sql))
        .await
        .map_err(|_| TestCaseError::fail("no answer within the deadline (a hang)"))?;
    answered(sql, answer.map(drop))
}

/// Success, or an ErrorResponse with a SQLSTATE that is not an internal error.
fn answered(sql: &str, answer: Result<(), tokio_postgres::Error>) -> Result<(), TestCaseError> {
    let Err(e) = answer else {
        return Ok(());
    };
    let Some(db) = e.as_db_error() else {
        return Err(TestCaseError::fail(format!(
            "an error without an ErrorResponse: {e:?}"
        )));
    };
    if *db.code() == SqlState::INTERNAL_ERROR && db.message().starts_with("Internal error") {
        // DataFusion's own "this is a bug" errors: reported, not ours to map.
        eprintln!(
            "DataFusion internal error for {}: {}",
            shown(&sql),
            db.message()
        );
        return Ok(());
    }
    prop_assert!(
        *db.code() != SqlState::INTERNAL_ERROR,
        "internal error (XX000) for a bad input: {}",
        db.message()
    );
    Ok(())
}

/// Objects the statements refer to, so that many of them reach execution.
const SETUP: &str = r#"
    create database "dfs://fz1" partitioned by VALUE(2023.01.01..2023.01.03);
    create table "dfs://fz1"."t1"(a INT, b DOUBLE, c SYMBOL, d DATE, e TIMESTAMP, f BOOL)
        partitioned by d;
    insert into "dfs://fz1"."t1" values
        (1, 1.5, 'x', DATE '2023-01-01', TIMESTAMP '2023-01-01 09:30:00', true),
        (2, -2.0, 'y', DATE '2023-01-02', TIMESTAMP '2023-01-02 10:00:00', false),
        (NULL, NULL, NULL, DATE '2023-01-03', NULL, NULL);
    create database "dfs://fz2" partitioned by HASH([SYMBOL, 4]);
    create table "dfs://fz2"."t2"(c SYMBOL, a LONG, e NANOTIMESTAMP) partitioned by c;
    create table "dfs://fz2"."t3"(a INT, c STRING);
"#;

/// An admin connection to `server` with [`SETUP`]'s objects created.
async fn set_up(server: &Fuzzed) -> tokio_postgres::Client {
    let client = server.connect().await.expect("connect");
    client.batch_execute(SETUP).await.expect("set up");
    client
}

#[test]
fn statements_over_pgwire_get_a_result_or_a_clean_error() {
    let server = Fuzzed::start();
    let rt = runtime();
    let client = rt.block_on(set_up(&server));
    check(&mut runner(800), &fuzzed_sql(), |sql| {
        rt.block_on(async {
            let result = run_one(&client, &sql).await;
            server.alive(&sql)?;
            result?;
            still_answers(&client).await
        })
    });
    rt.block_on(async {
        let fresh = server.connect().await.expect("connect after the run");
        still_answers(&fresh)
            .await
            .expect("a fresh connection answers");
    });
}

/// Values at the edges of each type, for [`every_call_over_edge_values_gets_a_result_or_a_clean_error`].
const EDGES: &[&str] = &[
    "NULL",
    "0",
    "-1",
    "3",
    "2147483648",
    "-9223372036854775808",
    "9223372036854775807",
    "99999999999999999999999999999999999999",
    "-2.5",
    "1e308",
    "''",
    "'x'",
    "'é🦀'",
    "DATE '2023-01-02'",
    "TIMESTAMP '2023-01-02 09:30:00.123'",
    "2023.01.02",
    "true",
    "`AAPL",
    "x'0a0b'",
    "b",
    "c",
    "e",
];

/// The second arguments and operands: one value of each kind.
const SECOND_EDGES: &[&str] = &[
    "NULL",
    "0",
    "-1",
    "9223372036854775807",
    "-2.5",
    "'x'",
    "TIMESTAMP '2023-01-02 09:30:00.123'",
    "true",
    "b",
    "c",
];

/// Every function, cast and operator of the grammar over edge values (and over the columns of a
/// table, so that the same calls also run on data rather than folded constants), with one and
/// two arguments, in a fixed order: the shallow inputs the random property draws only now and
/// then are all tried on every run. Calls with one argument, casts and operators go through
/// both protocols; the many two-argument calls through the simple one.
#[test]
fn every_call_over_edge_values_gets_a_result_or_a_clean_error() {
    let server = Fuzzed::start();
    let rt = runtime();
    let client = rt.block_on(set_up(&server));
    // (the call, whether to run it through the extended protocol too)
    let mut calls = Vec::new();
    for f in FUNCTIONS {
        calls.push((format!("{f}()"), true));
        for a in EDGES {
            calls.push((format!("{f}({a})"), true));
            for b in SECOND_EDGES {
                calls.push((format!("{f}({a}, {b})"), false));
            }
        }
    }
    for t in TYPES {
        for a in EDGES {
            calls.push((format!("cast({a} as {t})"), true));
        }
    }
    for op in ["+", "-", "*", "/", "%", "=", "<", "||", "like", "~"] {
        for a in EDGES {
            for b in SECOND_EDGES {
                calls.push((format!("{a} {op} {b}"), true));
            }
        }
    }
    let mut failures = Vec::new();
    rt.block_on(async {
        let mut client = client;
        for (call, extended) in &calls {
            let sql = format!("select {call} from \"dfs://fz1\".\"t1\"");
            let result = if *extended {
                run_one(&client, &sql).await
            } else {
                run_simple(&client, &sql).await
            };
            server.alive(&sql).expect("the server runs");
            if let Err(e) = result {
                failures.push(format!("{sql}: {e}"));
            }
            if client.is_closed() {
                client = server.connect().await.expect("reconnect");
            }
        }
    });
    assert!(
        failures.is_empty(),
        "{} of {} calls failed:\n{}",
        failures.len(),
        calls.len(),
        failures.join("\n")
    );
}
