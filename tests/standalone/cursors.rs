//! SQL cursors (DECLARE, FETCH, MOVE, CLOSE) as drivers' server-side cursors use them: their
//! rows, their lifetime against transaction blocks, and the portal a DECLARE leaves for the
//! extended protocol.

use tokio_postgres::error::SqlState;
use tokio_postgres::SimpleQueryMessage;

use crate::common::TestServer;
use crate::wire::{tags, Wire};

/// The first column of the rows of a simple query, and its CommandComplete count.
async fn simple(client: &tokio_postgres::Client, sql: &str) -> (Vec<String>, u64) {
    let mut rows = Vec::new();
    let mut count = 0;
    for m in client.simple_query(sql).await.unwrap() {
        match m {
            SimpleQueryMessage::Row(r) => rows.push(r.get(0).unwrap_or("NULL").to_owned()),
            SimpleQueryMessage::CommandComplete(n) => count = n,
            _ => {}
        }
    }
    (rows, count)
}

async fn code(client: &tokio_postgres::Client, sql: &str) -> SqlState {
    client
        .simple_query(sql)
        .await
        .expect_err(sql)
        .code()
        .cloned()
        .unwrap_or(SqlState::INTERNAL_ERROR)
}

async fn server() -> (TestServer, tokio_postgres::Client) {
    let server = TestServer::start();
    let client = server.client().await;
    let values: Vec<String> = (1..=20).map(|v| format!("({}, {v})", v % 2 + 1)).collect();
    client
        .batch_execute(&format!(
            r#"create database "dfs://cu" partitioned by VALUE(1..2);
               create table "dfs://cu"."t"(k INT, v LONG) partitioned by k;
               insert into "dfs://cu"."t" values {};"#,
            values.join(",")
        ))
        .await
        .unwrap();
    (server, client)
}

const QUERY: &str = r#"select v from "dfs://cu"."t" order by v"#;

#[tokio::test]
async fn fetch_and_move_read_a_cursor_forward() {
    let (_server, client) = server().await;
    client.batch_execute("begin").await.unwrap();
    client
        .batch_execute(&format!("declare c no scroll cursor for {QUERY}"))
        .await
        .unwrap();
    assert_eq!(
        simple(&client, "fetch 2 from c").await,
        (vec!["1".into(), "2".into()], 2)
    );
    assert_eq!(
        simple(&client, "fetch forward 3 in c").await.0,
        ["3", "4", "5"]
    );
    assert_eq!(simple(&client, "fetch c").await.0, ["6"]);
    assert_eq!(simple(&client, "move 10 in c").await, (vec![], 10));
    assert_eq!(simple(&client, "fetch next from c").await.0, ["17"]);
    assert_eq!(
        simple(&client, "fetch all from c").await.0,
        ["18", "19", "20"]
    );
    assert_eq!(simple(&client, "fetch 5 from c").await, (vec![], 0));
    assert_eq!(simple(&client, "move all in c").await, (vec![], 0));
    assert_eq!(
        code(&client, "fetch prior from c").await,
        SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE
    );
    // The error failed the block.
    client.batch_execute("rollback").await.unwrap();

    client.batch_execute("begin").await.unwrap();
    client
        .batch_execute(&format!("declare c cursor for {QUERY}"))
        .await
        .unwrap();
    assert_eq!(
        code(&client, "declare c cursor for select 1").await,
        SqlState::DUPLICATE_CURSOR
    );
    client.batch_execute("rollback").await.unwrap();
    client.batch_execute("begin").await.unwrap();
    client
        .batch_execute(&format!("declare c cursor for {QUERY}; close c"))
        .await
        .unwrap();
    assert_eq!(
        code(&client, "fetch 1 from c").await,
        SqlState::INVALID_CURSOR_NAME
    );
    client.batch_execute("rollback").await.unwrap();

    // Through the extended protocol, as rust-postgres sends any statement: described rows.
    let mut client = client;
    let txn = client.transaction().await.unwrap();
    txn.batch_execute(r#"declare "Big" cursor for select count(*), max(v) from "dfs://cu"."t""#)
        .await
        .unwrap();
    let rows = txn
        .query(r#"fetch forward 5 from "Big""#, &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].columns()[0].name(), "count");
    assert_eq!(
        (rows[0].get::<_, i64>(0), rows[0].get::<_, i64>(1)),
        (20, 20)
    );
    assert!(txn
        .query(r#"fetch 1 from "Big""#, &[])
        .await
        .unwrap()
        .is_empty());
    let e = txn.query("fetch 1 from nope", &[]).await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::INVALID_CURSOR_NAME));
    txn.rollback().await.unwrap();
}

#[tokio::test]
async fn cursors_live_as_long_as_postgres_lets_them() {
    let (_server, client) = server().await;
    // Without HOLD a cursor needs a transaction block.
    assert_eq!(
        code(&client, &format!("declare c cursor for {QUERY}")).await,
        SqlState::NO_ACTIVE_SQL_TRANSACTION
    );
    // Without HOLD it ends with the block.
    client
        .batch_execute(&format!(
            "begin; declare c cursor without hold for {QUERY}; commit"
        ))
        .await
        .unwrap();
    assert_eq!(
        code(&client, "fetch 1 from c").await,
        SqlState::INVALID_CURSOR_NAME
    );
    // WITH HOLD, outside a block or committed in one, it outlives it.
    client
        .batch_execute(&format!("declare h1 cursor with hold for {QUERY}"))
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "begin; declare h2 cursor with hold for {QUERY}; commit"
        ))
        .await
        .unwrap();
    assert_eq!(simple(&client, "fetch 2 from h1").await.0, ["1", "2"]);
    assert_eq!(simple(&client, "fetch 1 from h2").await.0, ["1"]);
    // A rollback closes the held cursors declared in its block, not the older ones.
    client
        .batch_execute(&format!(
            "begin; declare h3 cursor with hold for {QUERY}; fetch 1 from h1; rollback"
        ))
        .await
        .unwrap();
    assert_eq!(
        code(&client, "fetch 1 from h3").await,
        SqlState::INVALID_CURSOR_NAME
    );
    assert_eq!(simple(&client, "fetch 1 from h1").await.0, ["4"]);
    client.batch_execute("close all").await.unwrap();
    assert_eq!(
        code(&client, "fetch 1 from h2").await,
        SqlState::INVALID_CURSOR_NAME
    );
    assert_eq!(
        code(&client, "close h1").await,
        SqlState::INVALID_CURSOR_NAME
    );
}

#[tokio::test]
async fn a_declared_cursor_is_a_portal_of_the_extended_protocol() {
    let (server, _client) = server().await;
    let mut wire = Wire::login(server.port()).await;
    assert_eq!(wire.simple("begin").await.1, 'T');
    // psycopg declares a named cursor through the extended protocol, then describes the
    // portal of the cursor's name to learn its columns.
    let (m, status) = wire
        .extended(
            &format!(r#"DECLARE "psy_1" NO SCROLL CURSOR WITHOUT HOLD FOR {QUERY}"#),
            "",
            0,
        )
        .await;
    assert_eq!(tags(&m), "12C");
    assert_eq!(m[2].command(), "DECLARE CURSOR");
    assert_eq!(status, 'T');
    let (m, _) = wire.describe_portal("psy_1").await;
    assert_eq!(tags(&m), "T", "{m:?}");
    // One column, named v.
    assert_eq!(m[0].body[..4], [0, 1, b'v', 0]);
    let (m, _) = wire
        .extended(r#"FETCH FORWARD 3 FROM "psy_1""#, "", 0)
        .await;
    assert_eq!(tags(&m), "12DDDC");
    assert_eq!(m[5].command(), "FETCH 3");
    // Executing the cursor's portal hands out the rest, max_rows at a time.
    let (m, _) = wire.execute("psy_1", 10).await;
    assert_eq!(tags(&m), "DDDDDDDDDDs");
    let (m, _) = wire.execute("psy_1", 10).await;
    assert_eq!(tags(&m), "DDDDDDDC");
    // CLOSE drops the portal too.
    assert_eq!(tags(&wire.simple(r#"close "psy_1""#).await.0), "C");
    let (m, status) = wire.describe_portal("psy_1").await;
    assert_eq!(tags(&m), "E");
    assert_eq!(status, 'E');
    assert_eq!(wire.simple("rollback").await.1, 'I');

    // A BINARY cursor's rows come in binary through the simple protocol.
    let (m, _) = wire
        .simple(r#"begin; declare b binary cursor for select v from "dfs://cu"."t" where v = 7; fetch 1 from b"#)
        .await;
    assert_eq!(tags(&m), "CCTDC");
    assert_eq!(m[3].body, [0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
    assert_eq!(wire.simple("commit").await.1, 'I');
}
