//! Inputs the properties found that broke the server or got the wrong SQLSTATE, each kept as a
//! plain test, plus a COPY larger than one internal batch (the properties' COPYs are small).

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::SinkExt;

use super::common::{first_row, first_value, TestServer};

/// The SQLSTATE `sql` fails with.
async fn sqlstate(client: &tokio_postgres::Client, sql: &str) -> String {
    let e = client
        .simple_query(sql)
        .await
        .expect_err("the statement should fail");
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("no ErrorResponse: {e:?}"));
    db.code().code().to_owned()
}

#[tokio::test]
async fn nested_calls_are_refused_not_parsed_for_hours() {
    let server = TestServer::start();
    let client = server.client().await;
    let start = Instant::now();
    let calls = format!("select {}1{}", "abs(".repeat(40), ")".repeat(40));
    assert_eq!(sqlstate(&client, &calls).await, "54001");
    let cast_case = format!("select {}1{}", "CAST(CASE (".repeat(30), ")".repeat(90));
    assert_eq!(sqlstate(&client, &cast_case).await, "54001");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    // Ordinary nesting still works.
    let ten = format!("select {}-1{}", "abs(".repeat(10), ")".repeat(10));
    assert_eq!(first_value(&client, &ten).await, "1");
}

#[tokio::test]
async fn deep_chains_are_refused_and_the_server_lives() {
    let mut server = TestServer::start();
    let client = server.client().await;
    // 300 terms used to overflow a runtime thread's stack and abort the process.
    let concat = format!("select 'a'{}", " || 'a'".repeat(299));
    assert_eq!(first_value(&client, &concat).await, "a".repeat(300));
    let sum = format!("select 1{}", " + 1".repeat(998));
    assert_eq!(first_value(&client, &sum).await, "999");
    let deeper = format!("select 1{}", " + 1".repeat(5_000));
    assert_eq!(sqlstate(&client, &deeper).await, "54001");
    let unfinished = format!("select 1{} )", " + 1".repeat(300_000));
    assert_eq!(sqlstate(&client, &unfinished).await, "54001");
    assert!(server.exit_status().is_none(), "{}", server.log());
    assert_eq!(first_value(&client, "select 1").await, "1");
}

#[tokio::test]
async fn bad_input_gets_its_sqlstate_not_an_internal_error() {
    let server = TestServer::start();
    let client = server.client().await;
    // PostgreSQL: there is no parameter $1.
    assert_eq!(sqlstate(&client, "select $1").await, "42P02");
    // A function called with an argument type it does not take.
    assert_eq!(
        sqlstate(&client, "select to_timestamp(0, NULL)").await,
        "42804"
    );
    assert_eq!(sqlstate(&client, "select avg(NULL)").await, "42804");
    // SELECT INTO would create a table: not supported, said so.
    assert_eq!(sqlstate(&client, "select user into BOOL").await, "0A000");
    assert_eq!(
        sqlstate(
            &client,
            "select TIMESTAMP '2023-01-02 09:30:00' between 'x' and 0"
        )
        .await,
        "42804"
    );
    assert_eq!(
        sqlstate(&client, "select round(0, 2147483648)").await,
        "22003"
    );
    // No `sum` for an untyped parameter (Parse of the extended protocol).
    let e = client.prepare("select sum($1)").await.unwrap_err();
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42883"));
    // A 39-digit literal is a Decimal256: numeric on the wire, all its digits kept.
    assert_eq!(
        first_value(
            &client,
            "select coalesce(100000000000000000000000000000000000000)"
        )
        .await,
        "100000000000000000000000000000000000000"
    );
    // Values a function cannot take, found while it runs, with PostgreSQL's codes.
    for (sql, code) in [
        ("select sqrt(-1)", "2201F"),
        ("select abs(-9223372036854775808)", "22003"),
        ("select round(9223372036854775807, -1)", "22003"),
        (
            "select avg(99999999999999999999999999999999999999)",
            "22003",
        ),
        ("select DATE '2023-01-02' + 2147483648", "22008"),
        ("select date_trunc('fortnight', DATE '2023-01-02')", "22023"),
        ("select to_timestamp('x', 'y')", "22007"),
        ("select substr('abc', 1, -1)", "22011"),
    ] {
        assert_eq!(sqlstate(&client, sql).await, code, "{sql}");
    }
    assert_eq!(first_value(&client, "select 1").await, "1");
}

#[tokio::test]
async fn a_copy_failing_after_a_full_batch_leaves_no_rows() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://big" partitioned by HASH([INT, 4]);
               create table "dfs://big"."t"(k INT, v STRING) partitioned by k;"#,
        )
        .await
        .unwrap();
    // More rows than one batch the COPY hands its transaction (64 Ki), then a bad one.
    let mut data = String::new();
    for i in 0..70_000 {
        data.push_str(&format!("{i}\tv{i}\n"));
    }
    data.push_str("oops\tbad\n");
    let sink = client
        .copy_in::<_, Bytes>(r#"copy "dfs://big"."t" from stdin"#)
        .await
        .unwrap();
    futures::pin_mut!(sink);
    let sent = sink.send(Bytes::from(data)).await;
    let result = match sent {
        Ok(()) => sink.finish().await,
        Err(e) => Err(e),
    };
    let e = result.expect_err("the bad row fails the COPY");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("22P02"));
    assert_eq!(
        first_value(&client, r#"select count(*) from "dfs://big"."t""#).await,
        "0"
    );
}

#[tokio::test]
async fn explain_and_show_describe_the_rows_they_send() {
    let server = TestServer::start();
    let client = server.client().await;
    // Described as returning no rows, these sent rows anyway, which broke the client.
    for sql in ["explain select 0", "show tables"] {
        let statement = client.prepare(sql).await.unwrap();
        assert!(!statement.columns().is_empty(), "{sql}");
        let rows = client.query(&statement, &[]).await.unwrap();
        assert!(!rows.is_empty(), "{sql}");
        assert_eq!(rows[0].len(), statement.columns().len(), "{sql}");
    }
}

#[tokio::test]
async fn a_result_is_described_with_the_types_it_is_sent_in() {
    let server = TestServer::start();
    let client = server.client().await;
    // The branches coerce to numeric; the plan's schema before coercion said int8, and the
    // rows failed to encode (XX000) in both protocols.
    let sql = "select case when NULL in (0) then 0 else 0.0 end, 1 + 1";
    let messages = client
        .simple_query(sql)
        .await
        .expect("the simple query runs");
    let row = first_row(&messages);
    assert_eq!((row.get(0), row.get(1)), (Some("0.0"), Some("2")));
    let statement = client.prepare(sql).await.expect("Parse and Describe");
    let types: Vec<_> = statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    assert_eq!(
        types,
        [
            tokio_postgres::types::Type::NUMERIC,
            tokio_postgres::types::Type::INT8
        ]
    );
    let rows = client.query(&statement, &[]).await.expect("Execute");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>(1), 2);
}
