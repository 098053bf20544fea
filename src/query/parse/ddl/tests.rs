//! Tests of the DDL parser through [`parse_ddl`].

use super::partition::MAX_NESTING;
use super::*;
use crate::query::parse::literal::{self, parse_numeric_literal, Literal};

/// Parses a statement that must be ours and valid.
fn parse(sql: &str) -> DdlStatement {
    match parse_ddl(sql) {
        Ok(Some(statement)) => statement,
        Ok(None) => panic!("not recognised as DDL: {sql}"),
        Err(e) => panic!("{sql}\n  error at {}: {}", e.position, e.message),
    }
}

/// Parses a statement that must be ours and invalid.
fn error(sql: &str) -> DdlError {
    match parse_ddl(sql) {
        Err(e) => e,
        Ok(result) => panic!("{sql} should not parse, got {result:?}"),
    }
}

fn message(sql: &str) -> String {
    error(sql).message
}

/// A DolphinDB literal, e.g. `lit("2023.01.01")`.
fn lit(text: &str) -> Literal {
    parse_numeric_literal(text, false).unwrap()
}

fn ints(values: &[i64]) -> Vec<Literal> {
    values.iter().copied().map(Literal::Int).collect()
}

fn syms(names: &[&str]) -> Vec<Literal> {
    names
        .iter()
        .map(|n| Literal::Symbol(n.to_string()))
        .collect()
}

fn strs(values: &[&str]) -> Vec<Literal> {
    values
        .iter()
        .map(|v| Literal::String(v.to_string()))
        .collect()
}

/// The partition levels of a `CREATE DATABASE`.
fn levels(sql: &str) -> Vec<PartitionSpec> {
    match parse(sql) {
        DdlStatement::CreateDatabase { levels, .. } => levels,
        other => panic!("not CREATE DATABASE: {other:?}"),
    }
}

/// The single level of `create database "dfs://x" partitioned by {level}`.
fn level(level_sql: &str) -> PartitionSpec {
    let mut levels = levels(&format!(
        "create database \"dfs://x\" partitioned by {level_sql}"
    ));
    assert_eq!(levels.len(), 1);
    levels.remove(0)
}

fn level_error(level_sql: &str) -> String {
    message(&format!(
        "create database \"dfs://x\" partitioned by {level_sql}"
    ))
}

fn values(level_sql: &str) -> Vec<Literal> {
    match level(level_sql) {
        PartitionSpec::Value(values) => values,
        other => panic!("not VALUE: {other:?}"),
    }
}

fn columns(sql: &str) -> Vec<ColumnDef> {
    match parse(sql) {
        DdlStatement::CreateTable { columns, .. } => columns,
        other => panic!("not CREATE TABLE: {other:?}"),
    }
}

/// The only column of `create table t ({column_sql})`.
fn column(column_sql: &str) -> ColumnDef {
    let mut columns = columns(&format!("create table t ({column_sql})"));
    assert_eq!(columns.len(), 1);
    columns.remove(0)
}

fn table_name(name_sql: &str) -> TableName {
    match parse(&format!("drop table {name_sql}")) {
        DdlStatement::DropTable { name, .. } => name,
        other => panic!("not DROP TABLE: {other:?}"),
    }
}

fn qualified(db: &str, table: &str) -> TableName {
    TableName {
        db: Some(db.to_string()),
        table: table.to_string(),
    }
}

fn bare(table: &str) -> TableName {
    TableName {
        db: None,
        table: table.to_string(),
    }
}

fn col(name: &str, type_name: &str) -> ColumnDef {
    ColumnDef {
        name: name.to_string(),
        type_name: type_name.to_string(),
        type_args: vec![],
        not_null: false,
        options: vec![],
    }
}

fn opt(name: &str, value: Literal) -> (String, Literal) {
    (name.to_string(), value)
}

fn string(value: &str) -> Literal {
    Literal::String(value.to_string())
}

/// Every valid statement of the tests below that the no-panic test truncates.
const VALID: &[&str] = &[
    "create database \"dfs://testDB\" partitioned by VALUE(2023.01.01..2023.01.31)",
    "CREATE DATABASE IF NOT EXISTS 'dfs://m' PARTITIONED BY VALUE(2000.01M..2000.12M), engine='OLAP'",
    "create database \"dfs://r\" partitioned by RANGE(0 5 10), HASH([SYMBOL, 40]), atomic='TRANS'",
    "create database \"dfs://l\" partitioned by LIST([`IBM`ORCL`MSFT, `GOOG`FB]), chunkGranularity=\"TABLE\"",
    "create database \"dfs://l\" partitioned by LIST([[1,2],[3]]), VALUE([2023.01.01, 2023.02.01]), HASH([INT, 2])",
    "create database \"dfs://v\" partitioned by VALUE(`A `B), LIST(['a','b'], ['c']); -- done",
    "/* lead */ create database \"dfs://v\" partitioned by VALUE(DATE '2023-01-01', '2023-01-02', -5, 1.5e3, true, null)",
    "create database \"dfs://t\" partitioned by VALUE(09:30m 10:00m 09:30:00 09:30:00.000 2023.01.08T09:30:00 2023.01.08T09:30:00.123 2023.01.08T09:30:00.123456789)",
    "create table \"dfs://db\".\"pt\" (SecurityID SYMBOL, DateTime DATETIME [comment=\"time\", compress=\"delta\"], Price DOUBLE NOT NULL) partitioned by DateTime, SecurityID, sortColumns=`SecurityID`DateTime, keepDuplicates=ALL",
    "create table if not exists t (a double precision, b timestamp(3) with time zone, c numeric(10,2) not null, d character varying(20) null, \"Quoted \"\" Col\" DECIMAL32(4));",
    "create table loadTable('dfs://db', 't') (名字 STRING [comment='名'], x INT), sortColumns=`x",
    "drop database if exists \"dfs://x\"",
    "drop table 'dfs://db'.'t'",
    "drop table if exists \"dfs://db\".t",
    "truncate table loadTable(\"dfs://db\", \"t\")",
    "truncate T",
    "alter table \"dfs://db\".\"t\" add column c DECIMAL64(2) NOT NULL [comment=\"c\"]",
    "alter table t drop column c",
    "alter table t rename column a to b",
    "alter table t rename a to \"B\"",
    "alter table t rename to u",
];

#[test]
fn all_sample_statements_parse() {
    for sql in VALID {
        parse(sql);
    }
}

// ----- which statements are ours ------------------------------------------------

#[test]
fn other_statements_are_not_ours() {
    for sql in [
        "",
        "   ",
        ";",
        "-- just a comment",
        "/* just a comment */",
        "/* unterminated",
        "select 1",
        "SELECT * FROM t",
        "insert into t values (1)",
        "update t set a = 1",
        "delete from t",
        "create view v as select 1",
        "create user bob",
        "create index i on t (a)",
        "create temporary table t (a int)",
        "create schema s",
        "create",
        "drop",
        "alter",
        "drop view v",
        "drop user bob",
        "alter user bob with password 'x'",
        "alter database \"dfs://x\" set x = 1",
        "select 'unterminated",
        "create 'unterminated",
        "\"unterminated",
        "show tables",
        "databases",
        "table t",
    ] {
        assert_eq!(parse_ddl(sql), Ok(None), "{sql}");
    }
}

#[test]
fn leading_keywords_make_statements_ours() {
    for sql in [
        "create database",
        "CREATE TABLE",
        "Drop Database",
        "drop table",
        "truncate",
        "TRUNCATE TABLE",
        "alter table",
        "/* c */ create -- c\n table",
        "create table t as select 1",
    ] {
        assert!(parse_ddl(sql).is_err(), "{sql}");
    }
}

// ----- CREATE DATABASE ----------------------------------------------------------

#[test]
fn create_database_full() {
    assert_eq!(
        parse(
            "create database if not exists \"dfs://testDB\" partitioned by \
             VALUE(2023.01.01..2023.12.31), HASH([SYMBOL, 40]), \
             engine='TSDB', atomic='TRANS', chunkGranularity='TABLE'"
        ),
        DdlStatement::CreateDatabase {
            path: "dfs://testDB".into(),
            if_not_exists: true,
            levels: vec![
                PartitionSpec::Value(
                    literal::expand_range(&lit("2023.01.01"), &lit("2023.12.31"), 400).unwrap()
                ),
                PartitionSpec::Hash {
                    type_name: "SYMBOL".into(),
                    buckets: 40
                },
            ],
            options: vec![
                opt("engine", string("TSDB")),
                opt("atomic", string("TRANS")),
                opt("chunkGranularity", string("TABLE")),
            ],
        }
    );
}

#[test]
fn create_database_minimal_and_case_insensitive() {
    assert_eq!(
        parse("CREATE DATABASE 'dfs://x' PARTITIONED BY value(1 2)"),
        DdlStatement::CreateDatabase {
            path: "dfs://x".into(),
            if_not_exists: false,
            levels: vec![PartitionSpec::Value(ints(&[1, 2]))],
            options: vec![],
        }
    );
    assert_eq!(
        level("Hash([int, 2])"),
        PartitionSpec::Hash {
            type_name: "int".into(),
            buckets: 2
        }
    );
    assert_eq!(level("rAnGe(0 5)"), PartitionSpec::Range(ints(&[0, 5])));
}

#[test]
fn database_path_quoting() {
    let path = |sql: &str| match parse(sql) {
        DdlStatement::CreateDatabase { path, .. } => path,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        path("create database \"dfs://a\"\"b\" partitioned by VALUE(1)"),
        "dfs://a\"b"
    );
    assert_eq!(
        path("create database 'dfs://it''s' partitioned by VALUE(1)"),
        "dfs://it's"
    );
    assert_eq!(
        path("create database \"dfs://Mixed/Case\" partitioned by VALUE(1)"),
        "dfs://Mixed/Case"
    );
}

#[test]
fn date_range_expands_to_every_day() {
    let days = values("VALUE(2023.01.01..2023.12.31)");
    assert_eq!(days.len(), 365);
    assert_eq!(days[0], lit("2023.01.01"));
    assert_eq!(days[58], lit("2023.02.28"));
    assert_eq!(days[59], lit("2023.03.01"));
    assert_eq!(days[364], lit("2023.12.31"));
    assert_eq!(values("VALUE(2024.01.01..2024.12.31)").len(), 366);
}

#[test]
fn month_and_int_ranges() {
    let months = values("VALUE(2000.01M..2016.12M)");
    assert_eq!(months.len(), 204);
    assert_eq!(months[0], Literal::Month(2000 * 12));
    assert_eq!(months[203], Literal::Month(2016 * 12 + 11));
    assert_eq!(values("VALUE(2023.01M..2023.12M)").len(), 12);
    assert_eq!(
        values("VALUE(1..10)"),
        ints(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    );
    assert_eq!(values("VALUE(0..4)"), ints(&[0, 1, 2, 3, 4]));
    assert_eq!(values("VALUE(-2..1)"), ints(&[-2, -1, 0, 1]));
    assert_eq!(values("VALUE(3..3)"), ints(&[3]));
    assert_eq!(
        values("VALUE(09:30m..09:32m)"),
        vec![lit("09:30m"), lit("09:31m"), lit("09:32m")]
    );
    assert_eq!(
        level("RANGE(0..4)"),
        PartitionSpec::Range(ints(&[0, 1, 2, 3, 4]))
    );
}

#[test]
fn space_separated_vectors() {
    assert_eq!(
        level("RANGE(0 5 10)"),
        PartitionSpec::Range(ints(&[0, 5, 10]))
    );
    assert_eq!(
        level("RANGE(2023.01.01 2023.06.01 2024.01.01)"),
        PartitionSpec::Range(vec![
            lit("2023.01.01"),
            lit("2023.06.01"),
            lit("2024.01.01")
        ])
    );
    assert_eq!(values("VALUE(0 -5 10)"), ints(&[0, -5, 10]));
    assert_eq!(
        values("VALUE(1.5 2.5)"),
        vec![Literal::Float(1.5), Literal::Float(2.5)]
    );
}

#[test]
fn bracketed_vectors() {
    assert_eq!(values("VALUE([0, 5, 10])"), ints(&[0, 5, 10]));
    assert_eq!(
        values("VALUE([2023.01.01, 2023.02.01])"),
        vec![lit("2023.01.01"), lit("2023.02.01")]
    );
    assert_eq!(values("VALUE(['A', 'B'])"), strs(&["A", "B"]));
    assert_eq!(values("VALUE([\"A\",\"B\"])"), strs(&["A", "B"]));
    assert_eq!(values("VALUE([1..3])"), ints(&[1, 2, 3]));
    assert_eq!(
        level("RANGE([0, 5, 10])"),
        PartitionSpec::Range(ints(&[0, 5, 10]))
    );
}

#[test]
fn symbol_vectors() {
    assert_eq!(values("VALUE(`A`B`C)"), syms(&["A", "B", "C"]));
    assert_eq!(values("VALUE(`A `B)"), syms(&["A", "B"]));
    assert_eq!(values("VALUE(`600519`000001)"), syms(&["600519", "000001"]));
    assert_eq!(values("VALUE(`IBM)"), syms(&["IBM"]));
    assert_eq!(values("VALUE([`A, `B])"), syms(&["A", "B"]));
}

#[test]
fn sql_literals_in_schemes() {
    assert_eq!(values("VALUE('2023-01-01')"), strs(&["2023-01-01"]));
    assert_eq!(values("VALUE(DATE '2023-01-01')"), vec![lit("2023.01.01")]);
    assert_eq!(
        values("VALUE(date '2023-01-01' DATE '2023-01-02')"),
        vec![lit("2023.01.01"), lit("2023.01.02")]
    );
    assert_eq!(
        values("VALUE(TIME '09:30:00')"),
        vec![Literal::Time(34_200_000)]
    );
    assert_eq!(
        values("VALUE(TIMESTAMP '2023-01-08 09:30:00.123')"),
        vec![lit("2023.01.08T09:30:00.123")]
    );
    assert_eq!(values("VALUE(1, 2, 3)"), ints(&[1, 2, 3]));
    assert_eq!(values("VALUE('a','b')"), strs(&["a", "b"]));
    assert_eq!(values("VALUE(-5)"), ints(&[-5]));
    assert_eq!(values("VALUE(- 5)"), ints(&[-5]));
    assert_eq!(values("VALUE(-1.5)"), vec![Literal::Float(-1.5)]);
    assert_eq!(
        values("VALUE(true, FALSE, NULL)"),
        vec![Literal::Bool(true), Literal::Bool(false), Literal::Null]
    );
    assert_eq!(values("VALUE('it''s')"), strs(&["it's"]));
    assert_eq!(values("VALUE('')"), strs(&[""]));
    assert_eq!(values("VALUE(1..2, 5)"), ints(&[1, 2, 5]));
}

#[test]
fn temporal_literals_in_schemes() {
    assert_eq!(
        values("VALUE(09:30m 09:30:00 09:30:00.000 2023.01M)"),
        vec![
            Literal::Minute(570),
            Literal::Second(34_200),
            Literal::Time(34_200_000),
            Literal::Month(2023 * 12),
        ]
    );
    let datetime = 19_365 * 86_400 + 34_200;
    assert_eq!(
        values(
            "VALUE(2023.01.08T09:30:00, 2023.01.08T09:30:00.123, 2023.01.08T09:30:00.123456789)"
        ),
        vec![
            Literal::DateTime(datetime),
            Literal::Timestamp(datetime * 1_000 + 123),
            Literal::NanoTimestamp(datetime * 1_000_000_000 + 123_456_789),
        ]
    );
}

#[test]
fn list_schemes() {
    let list = |sql: &str| match level(sql) {
        PartitionSpec::List(groups) => groups,
        other => panic!("not LIST: {other:?}"),
    };
    assert_eq!(
        list("LIST([`IBM`ORCL`MSFT, `GOOG`FB])"),
        vec![syms(&["IBM", "ORCL", "MSFT"]), syms(&["GOOG", "FB"])]
    );
    assert_eq!(list("LIST([[1,2],[3]])"), vec![ints(&[1, 2]), ints(&[3])]);
    assert_eq!(
        list("LIST(['a','b'], ['c'])"),
        vec![strs(&["a", "b"]), strs(&["c"])]
    );
    assert_eq!(
        list("list(`A`B, `C)"),
        vec![syms(&["A", "B"]), syms(&["C"])]
    );
    assert_eq!(list("LIST(`A`B)"), vec![syms(&["A"]), syms(&["B"])]);
    assert_eq!(list("LIST([1, 2])"), vec![ints(&[1]), ints(&[2])]);
    assert_eq!(list("LIST('a', 'b')"), vec![strs(&["a"]), strs(&["b"])]);
    assert_eq!(
        list("LIST([[1, [2]], [3]])"),
        vec![ints(&[1, 2]), ints(&[3])]
    );
}

#[test]
fn hash_schemes() {
    assert_eq!(
        level("HASH([SYMBOL, 40])"),
        PartitionSpec::Hash {
            type_name: "SYMBOL".into(),
            buckets: 40
        }
    );
    assert_eq!(
        level("HASH([INT, 2])"),
        PartitionSpec::Hash {
            type_name: "INT".into(),
            buckets: 2
        }
    );
    assert_eq!(
        level("hash( [ Int , 1 ] )"),
        PartitionSpec::Hash {
            type_name: "Int".into(),
            buckets: 1
        }
    );
}

#[test]
fn up_to_three_levels() {
    assert_eq!(
        levels("create database \"dfs://x\" partitioned by VALUE(1), RANGE(0 5), HASH([INT, 2])"),
        vec![
            PartitionSpec::Value(ints(&[1])),
            PartitionSpec::Range(ints(&[0, 5])),
            PartitionSpec::Hash {
                type_name: "INT".into(),
                buckets: 2
            },
        ]
    );
    let sql = "create database \"dfs://x\" partitioned by VALUE(1), VALUE(2), VALUE(3), VALUE(4)";
    let e = error(sql);
    assert_eq!(e.message, "a database has at most 3 partition levels");
    assert_eq!(&sql[e.position..], "VALUE(4)");
}

#[test]
fn database_options() {
    let options = |sql: &str| match parse(&format!(
        "create database \"dfs://x\" partitioned by VALUE(1){sql}"
    )) {
        DdlStatement::CreateDatabase { options, .. } => options,
        other => panic!("{other:?}"),
    };
    assert_eq!(options(""), vec![]);
    assert_eq!(
        options(", engine='OLAP'"),
        vec![opt("engine", string("OLAP"))]
    );
    assert_eq!(
        options(", engine=\"OLAP\""),
        vec![opt("engine", string("OLAP"))]
    );
    assert_eq!(
        options(", Engine = TSDB"),
        vec![opt("Engine", Literal::Ident("TSDB".into()))]
    );
    assert_eq!(
        options(", n=-3, f=1.5, b=true"),
        vec![
            opt("n", Literal::Int(-3)),
            opt("f", Literal::Float(1.5)),
            opt("b", Literal::Bool(true)),
        ]
    );
    // A name that is also a partition type is still an option when followed by `=`.
    assert_eq!(options(", value=1"), vec![opt("value", Literal::Int(1))]);
}

#[test]
fn comments_semicolons_and_whitespace() {
    let expected = levels("create database \"dfs://x\" partitioned by VALUE(1 2)");
    for sql in [
        "  create database \"dfs://x\" partitioned by VALUE(1 2) ;  ",
        "create database \"dfs://x\" partitioned by VALUE(1 2);;",
        "-- leading\ncreate /* inline */ database \"dfs://x\"\npartitioned\tby VALUE(1 /* one */ 2) -- trailing",
        "/* outer /* nested */ still comment */ create database \"dfs://x\" partitioned by VALUE(1 2)",
        "create database \"dfs://x\" partitioned by VALUE(1 2) -- comment without newline",
    ] {
        assert_eq!(levels(sql), expected, "{sql}");
    }
}

#[test]
fn create_database_errors() {
    let e = error("create database \"x\" partitioned by VALUE(1)");
    assert_eq!(e.message, "database path must start with dfs://, got \"x\"");
    assert_eq!(e.position, 16);
    assert_eq!(
        message("create database 'DFS://x' partitioned by VALUE(1)"),
        "database path must start with dfs://, got \"DFS://x\""
    );
    assert_eq!(
        message("create database \"dfs://\" partitioned by VALUE(1)"),
        "database path dfs:// has no database name"
    );
    assert_eq!(
        message("create database testdb"),
        "syntax error at or near \"testdb\": expected a quoted database path such as \"dfs://db\""
    );
    assert_eq!(
        message("create database \"dfs://x\""),
        "syntax error at end of input: expected PARTITIONED BY after the database path"
    );
    assert_eq!(
        message("create database \"dfs://x\" partitioned VALUE(1)"),
        "syntax error at or near \"VALUE\": expected BY after PARTITIONED"
    );
    assert_eq!(
        message("create database if not \"dfs://x\" partitioned by VALUE(1)"),
        "syntax error at or near \"\"dfs://x\"\": expected EXISTS after IF NOT"
    );
    assert_eq!(
        message("create database \"dfs://x\" partitioned by VALUE(1), engine 'OLAP'"),
        "syntax error at or near \"'OLAP'\": expected \"=\" after option name engine"
    );
    assert_eq!(
        message(
            "create database \"dfs://x\" partitioned by VALUE(1), engine='OLAP', ENGINE='TSDB'"
        ),
        "option ENGINE is specified more than once"
    );
    assert_eq!(
        message(
            "create database \"dfs://x\" partitioned by VALUE(1), engine='OLAP', HASH([INT, 2])"
        ),
        "syntax error at or near \"(\": expected \"=\" after option name HASH"
    );
    assert_eq!(
        message("create database \"dfs://x\" partitioned by VALUE(1), 'OLAP'"),
        "syntax error at or near \"'OLAP'\": expected an option such as name = value"
    );
    assert_eq!(
        message("create database \"dfs://x\" partitioned by VALUE(1), engine="),
        "syntax error at end of input: expected a literal"
    );
    assert_eq!(
        message("create database \"dfs://x\" partitioned by VALUE(1) engine='OLAP'"),
        "syntax error at or near \"engine\": expected end of statement"
    );
    assert_eq!(
        message("create database \"dfs://x\" partitioned by VALUE(1); drop table t"),
        "syntax error at or near \"drop\": expected end of statement"
    );
}

#[test]
fn partition_level_errors() {
    assert_eq!(
        level_error("VALUE 1"),
        "syntax error at or near \"1\": expected \"(\" after VALUE"
    );
    assert_eq!(
        level_error("value"),
        "syntax error at end of input: expected \"(\" after VALUE"
    );
    assert_eq!(
        level_error("COMPO(1)"),
        "unknown partition type COMPO: expected VALUE, RANGE, LIST or HASH"
    );
    assert_eq!(
        level_error("(1)"),
        "syntax error at or near \"(\": expected a partition type (VALUE, RANGE, LIST or HASH)"
    );
    assert_eq!(
        level_error(""),
        "syntax error at end of input: expected a partition type (VALUE, RANGE, LIST or HASH)"
    );
    assert_eq!(level_error("VALUE()"), "VALUE partition scheme is empty");
    assert_eq!(level_error("VALUE([])"), "VALUE partition scheme is empty");
    assert_eq!(
        level_error("RANGE(1)"),
        "RANGE partition scheme needs at least 2 boundaries"
    );
    assert_eq!(level_error("LIST()"), "LIST partition scheme is empty");
    assert_eq!(level_error("LIST([])"), "LIST partition scheme is empty");
    assert_eq!(
        level_error("LIST([[1], []])"),
        "LIST partition scheme has an empty partition"
    );
    assert_eq!(
        level_error("VALUE(1"),
        "syntax error at end of input: expected \")\" to close VALUE(...)"
    );
    assert_eq!(
        level_error("VALUE(1 2"),
        "syntax error at end of input: expected \")\" to close VALUE(...)"
    );
    assert_eq!(
        level_error("VALUE(1,)"),
        "syntax error at or near \")\": expected a literal"
    );
    assert_eq!(
        level_error("VALUE(abc)"),
        "syntax error at or near \"abc\": expected a literal"
    );
    assert_eq!(
        level_error("VALUE(@)"),
        "syntax error at or near \"@\": expected a literal"
    );
    assert_eq!(
        level_error("VALUE([1, 2)"),
        "syntax error at or near \")\": expected \",\" or \"]\" in the vector"
    );
    assert_eq!(
        level_error("VALUE(1..)"),
        "syntax error at or near \")\": expected a literal"
    );
    assert_eq!(
        level_error("VALUE(1..3 5)"),
        "syntax error at or near \"5\": expected \")\" to close VALUE(...)"
    );
    assert_eq!(
        level_error("VALUE(- x)"),
        "syntax error at or near \"x\": expected a number after \"-\""
    );
    assert_eq!(
        level_error("VALUE(`)"),
        "empty symbol literal: expected a name after `"
    );
    assert_eq!(
        level_error("VALUE(-2023.01.01)"),
        "a minus sign cannot precede 2023.01.01"
    );
}

#[test]
fn literal_errors_carry_positions() {
    let sql = "create database \"dfs://x\" partitioned by VALUE(2023.01.01 2023.02.30)";
    let e = error(sql);
    assert_eq!(e.message, "invalid date literal 2023.02.30");
    assert_eq!(&sql[e.position..], "2023.02.30)");
    assert_eq!(
        level_error("VALUE(2023.13M)"),
        "invalid month literal 2023.13M"
    );
    assert_eq!(
        level_error("VALUE(25:00:00)"),
        "invalid time literal 25:00:00"
    );
    assert_eq!(level_error("VALUE(12abc)"), "invalid numeric literal 12abc");
    assert_eq!(
        level_error("VALUE(99999999999999999999)"),
        "integer literal 99999999999999999999 is out of range"
    );
    let sql = "create database \"dfs://x\" partitioned by VALUE(DATE '2023-02-30')";
    let e = error(sql);
    assert_eq!(
        e.message,
        "invalid input syntax for type date: \"2023-02-30\""
    );
    assert_eq!(&sql[e.position..], "'2023-02-30')");
    assert_eq!(
        level_error("VALUE(TIME 'noon')"),
        "invalid input syntax for type time: \"noon\""
    );
    assert_eq!(
        level_error("VALUE(TIMESTAMP 'x')"),
        "invalid input syntax for type timestamp: \"x\""
    );
}

#[test]
fn range_errors() {
    let sql = "create database \"dfs://x\" partitioned by VALUE(1..0)";
    let e = error(sql);
    assert_eq!(e.message, "partition scheme range 1..0 is empty");
    assert_eq!(&sql[e.position..], "1..0)");
    assert_eq!(
        level_error("VALUE(2023.12.31..2023.01.01)"),
        "partition scheme range 2023.12.31..2023.01.01 is empty"
    );
    assert_eq!(
        level_error("VALUE(1..2023.01.01)"),
        "partition scheme range 1..2023.01.01 has endpoints of different types"
    );
    assert_eq!(
        level_error("VALUE(1.0..2.0)"),
        "partition scheme range 1.0..2.0 needs integer or temporal endpoints"
    );
    assert_eq!(
        level_error("VALUE('a'..'c')"),
        "partition scheme range 'a'..'c' needs integer or temporal endpoints"
    );
    assert_eq!(
        level_error("VALUE(1..1000001)"),
        "partition scheme range 1..1000001 has 1000001 elements; at most 1000000 are allowed"
    );
    assert_eq!(
        level_error("VALUE(0..9223372036854775807)"),
        "partition scheme range 0..9223372036854775807 has 9223372036854775808 elements; at most 1000000 are allowed"
    );
    assert_eq!(
        level_error("VALUE(1..600000, 1..600000)"),
        "partition scheme ranges expand to more than 1000000 elements"
    );
    // The budget is per statement, not per level.
    assert_eq!(
        message("create database \"dfs://x\" partitioned by VALUE(1..600000), RANGE(1..600000)"),
        "partition scheme ranges expand to more than 1000000 elements"
    );
}

#[test]
fn largest_range_is_accepted() {
    assert_eq!(values("VALUE(1..1000000)").len(), 1_000_000);
}

#[test]
fn hash_errors() {
    let shape = "HASH expects [TYPE, buckets], e.g. HASH([SYMBOL, 40])";
    for scheme in [
        "HASH()",
        "HASH(SYMBOL, 40)",
        "HASH([SYMBOL])",
        "HASH([40, SYMBOL])",
        "HASH([SYMBOL, 40, 2])",
        "HASH([SYMBOL, `a])",
        "HASH([SYMBOL 40])",
        "HASH([SYMBOL, 40)",
    ] {
        assert_eq!(level_error(scheme), shape, "{scheme}");
    }
    assert_eq!(
        level_error("HASH([INT, 0])"),
        "HASH bucket count must be a positive integer, got 0"
    );
    assert_eq!(
        level_error("HASH([INT, -3])"),
        "HASH bucket count must be a positive integer, got -3"
    );
    assert_eq!(
        level_error("HASH([INT, 2.5])"),
        "HASH bucket count must be a positive integer, got 2.5"
    );
    assert_eq!(
        level_error("HASH([INT, 2]"),
        "syntax error at end of input: expected \")\" to close HASH(...)"
    );
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("VALUE({}1{})", "[".repeat(200), "]".repeat(200));
    assert_eq!(level_error(&deep), "vectors are nested too deeply");
    let ok = format!(
        "VALUE({}1{})",
        "[".repeat(MAX_NESTING),
        "]".repeat(MAX_NESTING)
    );
    assert_eq!(values(&ok), ints(&[1]));
}

#[test]
fn lexer_errors() {
    let e = error("create database \"dfs://x partitioned by VALUE(1)");
    assert_eq!(e.message, "unterminated quoted identifier");
    assert_eq!(e.position, 16);
    assert_eq!(
        message("create database 'dfs://x"),
        "unterminated quoted string"
    );
    let e = error("create database \"dfs://x\" /* partitioned by VALUE(1)");
    assert_eq!(e.message, "unterminated /* comment");
    assert_eq!(e.position, 26);
    assert_eq!(
        message("create database \"dfs://x\" /* /* */ partitioned by VALUE(1)"),
        "unterminated /* comment"
    );
}

// ----- CREATE TABLE -------------------------------------------------------------

#[test]
fn create_table_dolphindb_style() {
    assert_eq!(
        parse(
            "create table \"dfs://db\".\"pt\" (\n\
                 SecurityID SYMBOL,\n\
                 DateTime DATETIME [comment=\"time\", compress=\"delta\"],\n\
                 Price DOUBLE NOT NULL,\n\
                 Qty INT\n\
             ) partitioned by DateTime, SecurityID, sortColumns=`SecurityID`DateTime, keepDuplicates=ALL"
        ),
        DdlStatement::CreateTable {
            name: qualified("dfs://db", "pt"),
            if_not_exists: false,
            columns: vec![
                col("SecurityID", "SYMBOL"),
                ColumnDef {
                    options: vec![opt("comment", string("time")), opt("compress", string("delta"))],
                    ..col("DateTime", "DATETIME")
                },
                ColumnDef { not_null: true, ..col("Price", "DOUBLE") },
                col("Qty", "INT"),
            ],
            partitioned_by: vec!["DateTime".into(), "SecurityID".into()],
            options: vec![
                opt("sortColumns", string("SecurityID,DateTime")),
                opt("keepDuplicates", Literal::Ident("ALL".into())),
            ],
        }
    );
}

#[test]
fn create_table_postgres_style() {
    assert_eq!(
        parse("CREATE TABLE IF NOT EXISTS t (id int NOT NULL, name varchar(20))"),
        DdlStatement::CreateTable {
            name: bare("t"),
            if_not_exists: true,
            columns: vec![
                ColumnDef {
                    not_null: true,
                    ..col("id", "int")
                },
                ColumnDef {
                    type_args: vec![20],
                    ..col("name", "varchar")
                },
            ],
            partitioned_by: vec![],
            options: vec![],
        }
    );
}

#[test]
fn column_types() {
    let typed = |sql: &str| {
        let c = column(sql);
        (c.type_name, c.type_args)
    };
    assert_eq!(typed("a SYMBOL"), ("SYMBOL".into(), vec![]));
    assert_eq!(
        typed("a double precision"),
        ("double precision".into(), vec![])
    );
    assert_eq!(
        typed("a timestamp  without\ttime zone"),
        ("timestamp without time zone".into(), vec![])
    );
    assert_eq!(
        typed("a character varying(20)"),
        ("character varying".into(), vec![20])
    );
    assert_eq!(typed("a numeric(10,2)"), ("numeric".into(), vec![10, 2]));
    assert_eq!(
        typed("a numeric ( 10 , -2 )"),
        ("numeric".into(), vec![10, -2])
    );
    assert_eq!(typed("a DECIMAL32(4)"), ("DECIMAL32".into(), vec![4]));
    assert_eq!(typed("a DECIMAL64"), ("DECIMAL64".into(), vec![]));
    assert_eq!(
        typed("a timestamp(3) with time zone"),
        ("timestamp with time zone".into(), vec![3])
    );
    assert_eq!(typed("a timestamp"), ("timestamp".into(), vec![]));
    // Column names that are also type or temporal keywords.
    assert_eq!(column("date DATE").name, "date");
    assert_eq!(column("time TIME").name, "time");
}

#[test]
fn column_nullability_and_options() {
    assert!(column("a int not null").not_null);
    assert!(column("a int NOT NULL").not_null);
    assert!(!column("a int null").not_null);
    assert!(!column("a int").not_null);
    let c = column("a INT [compress=\"delta\"] NOT NULL");
    assert!(c.not_null);
    assert_eq!(c.options, vec![opt("compress", string("delta"))]);
    let c = column("a INT NOT NULL [comment='it''s', compress=`delta, level=3]");
    assert!(c.not_null);
    assert_eq!(
        c.options,
        vec![
            opt("comment", string("it's")),
            opt("compress", Literal::Symbol("delta".into())),
            opt("level", Literal::Int(3)),
        ]
    );
}

#[test]
fn identifiers_keep_their_case() {
    let cols = columns(
        "create table MyTable (SecurityID SYMBOL, \"Quoted Name\" INT, \"a\"\"b\" INT, lower int)",
    );
    let names: Vec<_> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["SecurityID", "Quoted Name", "a\"b", "lower"]);
    assert_eq!(table_name("MyTable"), bare("MyTable"));
    assert_eq!(table_name("\"T\""), bare("T"));
    assert_eq!(table_name("t"), bare("t"));
}

#[test]
fn unicode_identifiers() {
    let cols = columns("create table 表 (名字 STRING, \"列 一\" INT, _x$1 INT)");
    let names: Vec<_> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["名字", "列 一", "_x$1"]);
    let e = error("create table 表 (名字 INT[])");
    assert_eq!(e.message, "array column types are not supported");
    assert_eq!(&"create table 表 (名字 INT[])"[e.position..], "[])");
}

#[test]
fn table_options() {
    let options = |tail: &str| match parse(&format!("create table t (a INT, b INT){tail}")) {
        DdlStatement::CreateTable {
            options,
            partitioned_by,
            ..
        } => (partitioned_by, options),
        other => panic!("{other:?}"),
    };
    assert_eq!(options(""), (vec![], vec![]));
    assert_eq!(
        options(", sortColumns=`a"),
        (
            vec![],
            vec![opt("sortColumns", Literal::Symbol("a".into()))]
        )
    );
    assert_eq!(
        options(", sortColumns=`a`b"),
        (vec![], vec![opt("sortColumns", string("a,b"))])
    );
    assert_eq!(
        options(", sortColumns=`a `b"),
        (vec![], vec![opt("sortColumns", string("a,b"))])
    );
    assert_eq!(
        options(", sortColumns='a,b'"),
        (vec![], vec![opt("sortColumns", string("a,b"))])
    );
    assert_eq!(
        options(" partitioned by a, sortColumns=`b, keepDuplicates=ALL"),
        (
            vec!["a".to_string()],
            vec![
                opt("sortColumns", Literal::Symbol("b".into())),
                opt("keepDuplicates", Literal::Ident("ALL".into()))
            ]
        )
    );
    assert_eq!(
        options(" PARTITIONED BY a, \"b\""),
        (vec!["a".to_string(), "b".to_string()], vec![])
    );
    // Partitioning columns are not checked against the column list here.
    assert_eq!(
        options(" partitioned by zzz"),
        (vec!["zzz".to_string()], vec![])
    );
    assert_eq!(
        options(" partitioned by a, b, a"),
        (
            vec!["a".to_string(), "b".to_string(), "a".to_string()],
            vec![]
        )
    );
}

#[test]
fn create_table_names() {
    let name = |sql: &str| match parse(&format!("create table {sql} (a INT)")) {
        DdlStatement::CreateTable { name, .. } => name,
        other => panic!("{other:?}"),
    };
    assert_eq!(name("\"dfs://db\".\"t\""), qualified("dfs://db", "t"));
    assert_eq!(name("'dfs://db'.'t'"), qualified("dfs://db", "t"));
    assert_eq!(name("\"dfs://db\".t"), qualified("dfs://db", "t"));
    assert_eq!(
        name("loadTable('dfs://db', 't')"),
        qualified("dfs://db", "t")
    );
    assert_eq!(
        name("loadtable(\"dfs://db\", \"T\")"),
        qualified("dfs://db", "T")
    );
    assert_eq!(name("t"), bare("t"));
    assert_eq!(name("\"T\""), bare("T"));
    assert_eq!(name("if"), bare("if"));
}

#[test]
fn create_table_errors() {
    let e = error("create table t ()");
    assert_eq!(e.message, "a table needs at least one column");
    assert_eq!(e.position, 16);
    let e = error("create table t (a int, b int, A double)");
    assert_eq!(e.message, "column \"A\" specified more than once");
    assert_eq!(e.position, 30);
    assert_eq!(
        message("create table t (\"x\" int, \"X\" int)"),
        "column \"X\" specified more than once"
    );
    assert_eq!(
        message("create table t (a int"),
        "syntax error at end of input: expected \",\" or \")\" after a column definition"
    );
    assert_eq!(
        message("create table t (a int,)"),
        "syntax error at or near \")\": expected a column name"
    );
    assert_eq!(
        message("create table t (a)"),
        "syntax error at or near \")\": expected a type for column \"a\""
    );
    assert_eq!(
        message("create table t (a, b int)"),
        "syntax error at or near \",\": expected a type for column \"a\""
    );
    assert_eq!(
        message("create table t a int"),
        "syntax error at or near \"a\": expected \"(\" to start the column list"
    );
    assert_eq!(
        message("create table t as select 1"),
        "syntax error at or near \"as\": expected \"(\" to start the column list"
    );
    assert_eq!(
        message("create table t (a int) partitioned a"),
        "syntax error at or near \"a\": expected BY after PARTITIONED"
    );
    assert_eq!(
        message("create table t (a int) partitioned by"),
        "syntax error at end of input: expected a partitioning column"
    );
    assert_eq!(
        message("create table t (a int) partitioned by a,"),
        "syntax error at end of input: expected a partitioning column"
    );
    assert_eq!(
        message("create table t (a int) partitioned by a, b, c, d"),
        "a table has at most 3 partitioning columns"
    );
    assert_eq!(
        message("create table t (a int) sortColumns=`a"),
        "syntax error at or near \"sortColumns\": expected end of statement"
    );
    assert_eq!(
        message("create table t (a int), 5"),
        "syntax error at or near \"5\": expected an option such as name = value"
    );
    assert_eq!(
        message("create table t (a int), x=1, X=2"),
        "option X is specified more than once"
    );
    assert_eq!(
        message("create table t (a int), x=`"),
        "empty symbol literal: expected a name after `"
    );
}

#[test]
fn column_errors() {
    assert_eq!(
        message("create table t (a INT[])"),
        "array column types are not supported"
    );
    assert_eq!(
        message("create table t (a INT[10])"),
        "array column types are not supported"
    );
    assert_eq!(
        message("create table t (a int array)"),
        "array column types are not supported"
    );
    assert_eq!(
        message("create table t (a numeric(10,2)[])"),
        "array column types are not supported"
    );
    assert_eq!(
        message("create table t (a int default 5)"),
        "column constraint default is not supported"
    );
    assert_eq!(
        message("create table t (a int primary key)"),
        "column constraint primary is not supported"
    );
    assert_eq!(
        message("create table t (a int REFERENCES u)"),
        "column constraint REFERENCES is not supported"
    );
    assert_eq!(
        message("create table t (a int, primary key (a))"),
        "table constraints such as primary are not supported"
    );
    assert_eq!(
        message("create table t (a int, CONSTRAINT c CHECK (a > 0))"),
        "table constraints such as CONSTRAINT are not supported"
    );
    assert_eq!(
        message("create table t (a int not)"),
        "syntax error at or near \")\": expected NULL after NOT"
    );
    assert_eq!(
        message("create table t (a int not null null)"),
        "conflicting or redundant NULL / NOT NULL declarations for column \"a\""
    );
    assert_eq!(
        message("create table t (a int [x=1] [y=2])"),
        "column \"a\" has more than one option list"
    );
    assert_eq!(
        message("create table t (a varchar(x))"),
        "syntax error at or near \"x\": expected an integer type modifier"
    );
    assert_eq!(
        message("create table t (a varchar())"),
        "syntax error at or near \")\": expected an integer type modifier"
    );
    assert_eq!(
        message("create table t (a numeric(1.5))"),
        "type modifiers must be integers, got 1.5"
    );
    assert_eq!(
        message("create table t (a numeric(1 2))"),
        "syntax error at or near \"2\": expected \",\" or \")\" in the type modifiers"
    );
    assert_eq!(
        message("create table t (a int [compress])"),
        "syntax error at or near \"]\": expected \"=\" after option name compress"
    );
    assert_eq!(
        message("create table t (a int [])"),
        "array column types are not supported"
    );
    assert_eq!(
        message("create table t (a int [,])"),
        "syntax error at or near \",\": expected an option such as name = value"
    );
    assert_eq!(
        message("create table t (a int [x=1 y=2])"),
        "syntax error at or near \"y\": expected \",\" or \"]\" in the column options"
    );
    assert_eq!(
        message("create table t (a int [x=1, X=2])"),
        "option X is specified more than once"
    );
    assert_eq!(
        message("create table t (\"\" int)"),
        "zero-length delimited identifier"
    );
    assert_eq!(
        message("create table t (a int, 5 int)"),
        "syntax error at or near \"5\": expected a column name"
    );
}

#[test]
fn table_name_errors() {
    let e = error("create table 'dfs://db' (a int)");
    assert_eq!(
        e.message,
        "syntax error at or near \"(\": expected \".\" and a table name after the database path"
    );
    assert_eq!(
        message("create table \"dfs://db\""),
        "syntax error at end of input: expected \".\" and a table name after the database path"
    );
    assert_eq!(
        message("create table 't' (a int)"),
        "syntax error at or near \"'t'\": expected a table name"
    );
    assert_eq!(
        message("create table db.t (a int)"),
        "syntax error at or near \"db\": expected a quoted database path such as \"dfs://db\" before \".\""
    );
    assert_eq!(
        message("create table \"x\".t (a int)"),
        "database path must start with dfs://, got \"x\""
    );
    assert_eq!(
        message("create table \"\" (a int)"),
        "zero-length delimited identifier"
    );
    assert_eq!(
        message("create table \"dfs://db\".\"\" (a int)"),
        "zero-length delimited identifier"
    );
    assert_eq!(
        message("create table \"dfs://db\". (a int)"),
        "syntax error at or near \"(\": expected a table name"
    );
    assert_eq!(
        message("create table (a int)"),
        "syntax error at or near \"(\": expected a table name"
    );
    assert_eq!(
        message("create table loadTable('dfs://db' 't') (a int)"),
        "syntax error at or near \"'t'\": expected \",\" after the database path in loadTable"
    );
    assert_eq!(
        message("create table loadTable('dfs://db', 't' (a int)"),
        "syntax error at or near \"(\": expected \")\" to close loadTable"
    );
    assert_eq!(
        message("create table loadTable('db', 't') (a int)"),
        "database path must start with dfs://, got \"db\""
    );
    assert_eq!(
        message("create table loadTable(x, 't') (a int)"),
        "syntax error at or near \"x\": expected a quoted database path such as \"dfs://db\""
    );
}

// ----- DROP / TRUNCATE / ALTER --------------------------------------------------

#[test]
fn drop_database() {
    assert_eq!(
        parse("drop database \"dfs://x\""),
        DdlStatement::DropDatabase {
            path: "dfs://x".into(),
            if_exists: false
        }
    );
    assert_eq!(
        parse("DROP DATABASE IF EXISTS 'dfs://x';"),
        DdlStatement::DropDatabase {
            path: "dfs://x".into(),
            if_exists: true
        }
    );
    assert_eq!(
        message("drop database"),
        "syntax error at end of input: expected a quoted database path such as \"dfs://db\""
    );
    assert_eq!(
        message("drop database \"x\""),
        "database path must start with dfs://, got \"x\""
    );
    assert_eq!(
        message("drop database \"dfs://x\" cascade"),
        "syntax error at or near \"cascade\": expected end of statement"
    );
    assert_eq!(
        message("drop database if \"dfs://x\""),
        "syntax error at or near \"if\": expected a quoted database path such as \"dfs://db\""
    );
}

#[test]
fn drop_table() {
    assert_eq!(
        parse("drop table t"),
        DdlStatement::DropTable {
            name: bare("t"),
            if_exists: false
        }
    );
    assert_eq!(
        parse("DROP TABLE IF EXISTS \"dfs://db\".\"t\""),
        DdlStatement::DropTable {
            name: qualified("dfs://db", "t"),
            if_exists: true
        }
    );
    assert_eq!(table_name("'dfs://db'.'t'"), qualified("dfs://db", "t"));
    assert_eq!(table_name("\"dfs://db\".t"), qualified("dfs://db", "t"));
    assert_eq!(
        table_name("loadTable('dfs://db', 't')"),
        qualified("dfs://db", "t")
    );
    assert_eq!(
        table_name("LOADTABLE(\"dfs://db\", \"t\")"),
        qualified("dfs://db", "t")
    );
    assert_eq!(table_name("loadTable"), bare("loadTable"));
    assert_eq!(table_name("if"), bare("if"));
    assert_eq!(
        parse("drop table if exists if"),
        DdlStatement::DropTable {
            name: bare("if"),
            if_exists: true
        }
    );
    assert_eq!(
        message("drop table"),
        "syntax error at end of input: expected a table name"
    );
    assert_eq!(
        message("drop table a, b"),
        "syntax error at or near \",\": expected end of statement"
    );
}

#[test]
fn truncate_table() {
    for (sql, name) in [
        ("truncate t", bare("t")),
        ("TRUNCATE TABLE t;", bare("t")),
        (
            "truncate table \"dfs://db\".\"t\"",
            qualified("dfs://db", "t"),
        ),
        (
            "truncate loadTable('dfs://db', 't')",
            qualified("dfs://db", "t"),
        ),
        (
            "truncate table loadTable(\"dfs://db\", \"t\")",
            qualified("dfs://db", "t"),
        ),
    ] {
        assert_eq!(parse(sql), DdlStatement::TruncateTable { name }, "{sql}");
    }
    assert_eq!(
        message("truncate"),
        "syntax error at end of input: expected a table name"
    );
    assert_eq!(
        message("truncate table"),
        "syntax error at end of input: expected a table name"
    );
}

#[test]
fn alter_table() {
    let alter = |sql: &str| match parse(sql) {
        DdlStatement::AlterTable { name, op } => (name, op),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        alter("alter table \"dfs://db\".\"t\" add column c DOUBLE"),
        (
            qualified("dfs://db", "t"),
            AlterOp::AddColumn(col("c", "DOUBLE"))
        )
    );
    assert_eq!(
        alter("ALTER TABLE t ADD Price DECIMAL64(2) NOT NULL [comment=\"p\"]"),
        (
            bare("t"),
            AlterOp::AddColumn(ColumnDef {
                type_args: vec![2],
                not_null: true,
                options: vec![opt("comment", string("p"))],
                ..col("Price", "DECIMAL64")
            })
        )
    );
    assert_eq!(
        alter("alter table t drop column c"),
        (bare("t"), AlterOp::DropColumn("c".into()))
    );
    assert_eq!(
        alter("alter table loadTable('dfs://db', 't') drop \"C\""),
        (qualified("dfs://db", "t"), AlterOp::DropColumn("C".into()))
    );
    assert_eq!(
        alter("alter table t rename column a to b"),
        (
            bare("t"),
            AlterOp::RenameColumn {
                from: "a".into(),
                to: "b".into()
            }
        )
    );
    assert_eq!(
        alter("alter table \"dfs://db\".\"t\" rename to \"U\""),
        (
            qualified("dfs://db", "t"),
            AlterOp::RenameTable { to: "U".into() }
        )
    );
    let names = |n: &[&str]| AlterOp::DropPartitions(n.iter().map(|s| s.to_string()).collect());
    assert_eq!(
        alter("alter table t drop partition '20230101'"),
        (bare("t"), names(&["20230101"]))
    );
    assert_eq!(
        alter("alter table t drop partition ('a', 'b/3')"),
        (bare("t"), names(&["a", "b/3"]))
    );
    assert_eq!(
        alter("alter table t RENAME A TO \"B\""),
        (
            bare("t"),
            AlterOp::RenameColumn {
                from: "A".into(),
                to: "B".into()
            }
        )
    );
}

#[test]
fn alter_table_errors() {
    assert_eq!(
        message("alter table t"),
        "syntax error at end of input: expected ADD, DROP or RENAME after the table name"
    );
    assert_eq!(
        message("alter table t modify a int"),
        "syntax error at or near \"modify\": expected ADD, DROP or RENAME after the table name"
    );
    assert_eq!(
        message("alter table t drop partition"),
        "syntax error at end of input: expected a partition name in quotes"
    );
    assert_eq!(
        message("alter table t drop partition 20230101"),
        "syntax error at or near \"20230101\": expected a partition name in quotes"
    );
    assert_eq!(
        message("alter table t drop partition ('a'"),
        "syntax error at end of input: expected ) after the partition names"
    );
    assert_eq!(
        message("alter table t rename to"),
        "syntax error at end of input: expected the new table name"
    );
    assert_eq!(
        message("alter table t rename a b"),
        "syntax error at or near \"b\": expected TO after the column name"
    );
    assert_eq!(
        message("alter table t rename a to"),
        "syntax error at end of input: expected the new column name"
    );
    assert_eq!(
        message("alter table t add column"),
        "syntax error at end of input: expected a column name"
    );
    assert_eq!(
        message("alter table t add column a"),
        "syntax error at end of input: expected a type for column \"a\""
    );
    assert_eq!(
        message("alter table t add column a int[]"),
        "array column types are not supported"
    );
    assert_eq!(
        message("alter table t drop column"),
        "syntax error at end of input: expected a column name"
    );
    assert_eq!(
        message("alter table t drop column a, b"),
        "syntax error at or near \",\": expected end of statement"
    );
}

// ----- errors in general ----------------------------------------------------------

#[test]
fn error_type_behaves() {
    let e = error("drop table");
    assert_eq!(e.to_string(), e.message);
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(boxed.to_string().starts_with("syntax error"));
}

#[test]
fn long_tokens_are_shortened_in_messages() {
    let long = "x".repeat(100);
    let e = message(&format!("drop table t {long}"));
    assert_eq!(
        e,
        format!(
            "syntax error at or near \"{}...\": expected end of statement",
            "x".repeat(40)
        )
    );
    let e = message(&format!("drop table t {}", "é".repeat(100)));
    assert_eq!(
        e,
        format!(
            "syntax error at or near \"{}...\": expected end of statement",
            "é".repeat(40)
        )
    );
}

/// Parses `sql` (which must not panic) and checks the invariants a caller relies on.
fn check_no_panic(sql: &str) {
    if let Err(e) = parse_ddl(sql) {
        assert!(!e.message.is_empty(), "{sql:?}");
        assert!(
            e.position <= sql.len(),
            "{sql:?}: position {} past end",
            e.position
        );
        assert!(
            sql.is_char_boundary(e.position),
            "{sql:?}: position {} not a char boundary",
            e.position
        );
    }
}

#[test]
fn truncated_statements_never_panic() {
    for sql in VALID {
        for (end, _) in sql.char_indices() {
            check_no_panic(&sql[..end]);
        }
        // And the tail of each, which usually starts mid-token.
        for (start, _) in sql.char_indices() {
            check_no_panic(&sql[start..]);
        }
    }
}

/// A small xorshift generator: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_garbage_never_panics() {
    const PREFIXES: &[&str] = &[
        "",
        "create database \"dfs://x\" partitioned by ",
        "create database \"dfs://x\" partitioned by VALUE(",
        "create database \"dfs://x\" partitioned by LIST(",
        "create database \"dfs://x\" partitioned by HASH(",
        "create table t (",
        "create table t (a ",
        "create table \"dfs://db\".",
        "drop table ",
        "truncate ",
        "alter table t ",
    ];
    const PIECES: &[&str] = &[
        "create",
        "database",
        "table",
        "drop",
        "alter",
        "truncate",
        "add",
        "rename",
        "to",
        "column",
        "if",
        "not",
        "exists",
        "null",
        "partitioned",
        "by",
        "VALUE",
        "RANGE",
        "LIST",
        "HASH",
        "loadTable",
        "SYMBOL",
        "int",
        "double",
        "precision",
        "array",
        "default",
        "primary",
        "DATE",
        "TIME",
        "TIMESTAMP",
        "true",
        "\"dfs://x\"",
        "'dfs://y'",
        "\"t\"",
        "'s'",
        "\"",
        "'",
        "`",
        "`A`B",
        "(",
        ")",
        "[",
        "]",
        ",",
        ".",
        "..",
        "...",
        "-",
        "=",
        ";",
        "1",
        "-5",
        "0",
        "1.5",
        "1e-5",
        "1e",
        "2023.01.01",
        "2023.02.30",
        "2023.01M",
        "09:30m",
        "09:30:00",
        "09:30:00.000",
        "2023.01.08T09:30:00.123456789",
        "9999999999999999999999",
        "é",
        "名",
        "\u{1F600}",
        "\u{0301}",
        "/*",
        "*/",
        "--",
        "\n",
        " ",
        "\t",
        "@",
        "$",
        "\\",
        "\0",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let mut sql = PREFIXES[rng.below(PREFIXES.len())].to_string();
        for _ in 0..rng.below(12) {
            sql.push_str(PIECES[rng.below(PIECES.len())]);
            if rng.below(2) == 0 {
                sql.push(' ');
            }
        }
        check_no_panic(&sql);
    }
    // Arbitrary characters, including multi-byte ones.
    for _ in 0..5_000 {
        let sql: String = (0..rng.below(40))
            .filter_map(|_| {
                let code = if rng.below(2) == 0 {
                    rng.below(128)
                } else {
                    rng.below(0x11_0000)
                };
                char::from_u32(u32::try_from(code).unwrap_or(0))
            })
            .collect();
        check_no_panic(&sql);
        check_no_panic(&format!("create table t ({sql}"));
        check_no_panic(&format!(
            "create database \"dfs://x\" partitioned by VALUE({sql}"
        ));
    }
}

/// Finding duplicate column names was quadratic: 17,000 columns took 6 s to parse.
#[test]
fn a_very_wide_table_parses_and_its_duplicate_column_is_found() {
    let columns: Vec<String> = (0..50_000).map(|i| format!("c{i} INT")).collect();
    let sql = format!("create table \"dfs://x\".\"t\"({})", columns.join(", "));
    // Quadratic, this took about a minute; the speed itself is not asserted here.
    let DdlStatement::CreateTable { columns, .. } = parse(&sql) else {
        panic!("not a CREATE TABLE");
    };
    assert_eq!(columns.len(), 50_000);
    let duplicate = sql.replace(")", ", C49999 LONG)");
    assert_eq!(error(&duplicate).sqlstate, "42701");
}
