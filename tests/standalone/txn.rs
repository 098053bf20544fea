//! Transaction blocks through real clients: what a block writes is seen by nobody until
//! COMMIT, and is gone without a trace after ROLLBACK, a failed statement or a disconnect.

use std::time::{Duration, Instant};

use futures::SinkExt;

use crate::common::{parquet_files, TestServer};
use crate::wire::Wire;

const SETUP: &str = r#"create database "dfs://tx" partitioned by VALUE(1..3);
    create table "dfs://tx"."t"(k INT, v LONG) partitioned by k;
    create table "dfs://tx"."u"(k INT, v LONG) partitioned by k;"#;

async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
    client
        .query_one(
            &format!(r#"select count(*) from "dfs://tx"."{table}""#),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn copy_rows(
    client: &tokio_postgres::Client,
    table: &str,
    rows: std::ops::Range<i64>,
) -> Result<u64, tokio_postgres::Error> {
    let data: String = rows.map(|i| format!("{}\t{i}\n", 1 + i % 2)).collect();
    let sink = client
        .copy_in(&format!(r#"COPY "dfs://tx"."{table}" FROM STDIN"#))
        .await?;
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(data)).await?;
    sink.as_mut().finish().await
}

/// Waits until `check` holds, failing with `what` after 30 s.
async fn eventually<F: FnMut() -> bool>(what: &str, mut check: F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default()
}

fn sqlstate(e: &tokio_postgres::Error) -> &str {
    e.code().map(|c| c.code()).unwrap_or("none")
}

#[tokio::test]
async fn commit_makes_inserts_and_copies_visible_together() {
    let server = TestServer::start();
    let client = server.client().await;
    let other = server.client().await;
    client.batch_execute(SETUP).await.unwrap();

    client.batch_execute("begin").await.unwrap();
    let n = client
        .execute(r#"insert into "dfs://tx"."t" values (1, 1), (2, 2)"#, &[])
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(copy_rows(&client, "t", 10..13).await.unwrap(), 3);
    let n = client
        .execute(
            r#"insert into "dfs://tx"."t" values ($1, $2)"#,
            &[&1i32, &99i64],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    // Nobody sees the block's rows before COMMIT; the block reads the committed state.
    assert_eq!(count(&other, "t").await, 0);
    assert_eq!(count(&client, "t").await, 0);
    client.batch_execute("commit").await.unwrap();
    assert_eq!(count(&other, "t").await, 6);
    let sum: i64 = other
        .query_one(r#"select sum(v) from "dfs://tx"."t""#, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, 1 + 2 + 10 + 11 + 12 + 99);

    // rust-postgres' own transaction API, and autocommit afterwards.
    let mut client = client;
    let txn = client.transaction().await.unwrap();
    txn.execute(r#"insert into "dfs://tx"."t" values (1, 7)"#, &[])
        .await
        .unwrap();
    assert_eq!(count(&other, "t").await, 6);
    txn.commit().await.unwrap();
    assert_eq!(count(&other, "t").await, 7);
    client
        .execute(r#"insert into "dfs://tx"."t" values (1, 8)"#, &[])
        .await
        .unwrap();
    assert_eq!(count(&other, "t").await, 8);
}

#[tokio::test]
async fn rollback_leaves_no_rows_and_no_files() {
    let server = TestServer::start();
    let mut client = server.client().await;
    let other = server.client().await;
    client.batch_execute(SETUP).await.unwrap();
    client
        .execute(r#"insert into "dfs://tx"."t" values (1, 0)"#, &[])
        .await
        .unwrap();
    let data = server.home().join("datanode").join("data");
    let before = parquet_files(&data);

    client.batch_execute("begin").await.unwrap();
    client
        .execute(r#"insert into "dfs://tx"."t" values (1, 1), (2, 2)"#, &[])
        .await
        .unwrap();
    // Enough rows for the staging to write files before the block ends.
    assert_eq!(copy_rows(&client, "t", 0..600_000).await.unwrap(), 600_000);
    eventually("the block's rows were never staged in files", || {
        parquet_files(&data) > before
    })
    .await;
    assert_eq!(count(&other, "t").await, 1);
    client.batch_execute("rollback").await.unwrap();
    assert_eq!(count(&client, "t").await, 1);
    assert_eq!(count(&other, "t").await, 1);
    eventually("a rolled back block left files behind", || {
        parquet_files(&data) == before
    })
    .await;

    // The driver's rollback (dropping a transaction), then the session writes on its own.
    let txn = client.transaction().await.unwrap();
    txn.execute(r#"insert into "dfs://tx"."t" values (2, 5)"#, &[])
        .await
        .unwrap();
    drop(txn);
    client
        .execute(r#"insert into "dfs://tx"."t" values (2, 6)"#, &[])
        .await
        .unwrap();
    let sum: i64 = other
        .query_one(r#"select sum(v) from "dfs://tx"."t""#, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, 6, "only the autocommitted rows are there");
}

#[tokio::test]
async fn a_failed_statement_makes_commit_a_rollback() {
    let server = TestServer::start();
    let client = server.client().await;
    client.batch_execute(SETUP).await.unwrap();
    let mut wire = Wire::login(server.port()).await;
    assert_eq!(wire.simple("begin").await.1, 'T');
    let (m, status) = wire
        .simple(r#"insert into "dfs://tx"."t" values (1, 1), (2, 2)"#)
        .await;
    assert_eq!(m[0].command(), "INSERT 0 2");
    assert_eq!(status, 'T');
    let (m, status) = wire
        .simple(r#"insert into "dfs://tx"."t" values ('x', 3)"#)
        .await;
    assert_eq!(m[0].tag, b'E', "{m:?}");
    assert_eq!(status, 'E');
    let (m, status) = wire.simple("commit").await;
    assert_eq!(m[0].command(), "ROLLBACK");
    assert_eq!(status, 'I');
    assert_eq!(count(&client, "t").await, 0);

    // A COPY that fails in a block fails it too; the rows before it go with it.
    assert_eq!(wire.simple("begin").await.1, 'T');
    let (m, _) = wire
        .simple(r#"insert into "dfs://tx"."t" values (1, 1)"#)
        .await;
    assert_eq!(m[0].command(), "INSERT 0 1");
    client.batch_execute("begin").await.unwrap();
    client
        .execute(r#"insert into "dfs://tx"."t" values (1, 1)"#, &[])
        .await
        .unwrap();
    let sink = client
        .copy_in(r#"COPY "dfs://tx"."t" FROM STDIN"#)
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"1\t2\nnot a number\t3\n"))
        .await
        .unwrap();
    let e = sink.as_mut().finish().await.expect_err("bad COPY accepted");
    assert_eq!(sqlstate(&e), "22P02", "{e}");
    let e = client
        .execute(r#"insert into "dfs://tx"."t" values (1, 1)"#, &[])
        .await
        .expect_err("a failed block ran a statement");
    assert_eq!(sqlstate(&e), "25P02", "{e}");
    client.batch_execute("commit").await.unwrap();
    assert_eq!(count(&client, "t").await, 0);
    // The raw session's block is still open, and rolls back.
    let (m, status) = wire.simple("rollback").await;
    assert_eq!(m[0].command(), "ROLLBACK");
    assert_eq!(status, 'I');
    assert_eq!(count(&client, "t").await, 0);
}

#[tokio::test]
async fn a_disconnect_mid_block_leaves_nothing() {
    let server = TestServer::start();
    let client = server.client().await;
    client.batch_execute(SETUP).await.unwrap();
    let data = server.home().join("datanode").join("data");
    let before = parquet_files(&data);

    let writer = server.client().await;
    writer.batch_execute("begin").await.unwrap();
    copy_rows(&writer, "t", 0..600_000).await.unwrap();
    writer
        .execute(r#"insert into "dfs://tx"."t" values (1, 1)"#, &[])
        .await
        .unwrap();
    eventually("the block's rows were never staged in files", || {
        parquet_files(&data) > before
    })
    .await;
    drop(writer);
    eventually("a disconnected block left files behind", || {
        parquet_files(&data) == before
    })
    .await;
    assert_eq!(count(&client, "t").await, 0);
    // The server still takes writes.
    client
        .execute(r#"insert into "dfs://tx"."t" values (1, 1)"#, &[])
        .await
        .unwrap();
    assert_eq!(count(&client, "t").await, 1);
}

#[tokio::test]
async fn a_block_commits_every_table_it_wrote_or_none() {
    let server = TestServer::start();
    let client = server.client().await;
    let other = server.client().await;
    client.batch_execute(SETUP).await.unwrap();

    client.batch_execute("begin").await.unwrap();
    client
        .execute(r#"insert into "dfs://tx"."t" values (1, 1), (2, 2)"#, &[])
        .await
        .unwrap();
    assert_eq!(copy_rows(&client, "u", 0..5).await.unwrap(), 5);
    client
        .execute(r#"insert into "dfs://tx"."t" values (1, 3)"#, &[])
        .await
        .unwrap();
    assert_eq!((count(&other, "t").await, count(&other, "u").await), (0, 0));
    client.batch_execute("commit").await.unwrap();
    assert_eq!((count(&other, "t").await, count(&other, "u").await), (3, 5));

    // One table of the block changes under it (another session truncates it): the commit is
    // refused for the block as a whole, and the other table gets none of its rows either.
    client.batch_execute("begin").await.unwrap();
    client
        .execute(r#"insert into "dfs://tx"."t" values (1, 4)"#, &[])
        .await
        .unwrap();
    client
        .execute(r#"insert into "dfs://tx"."u" values (1, 4)"#, &[])
        .await
        .unwrap();
    other
        .batch_execute(r#"truncate table "dfs://tx"."u""#)
        .await
        .unwrap();
    let e = client
        .batch_execute("commit")
        .await
        .expect_err("a block committed over a truncated table");
    println!("refused: {e:?}");
    assert_eq!((count(&other, "t").await, count(&other, "u").await), (3, 0));
    // The session is out of the block and writes on its own again.
    client
        .execute(r#"insert into "dfs://tx"."u" values (1, 5)"#, &[])
        .await
        .unwrap();
    assert_eq!(count(&other, "u").await, 1);
}

#[tokio::test]
async fn what_a_block_cannot_stage_is_refused_and_fails_the_block() {
    let server = TestServer::start();
    let client = server.client().await;
    client.batch_execute(SETUP).await.unwrap();

    // UPDATE and DELETE stage too, as the only write of their table in the block.
    client
        .batch_execute(r#"insert into "dfs://tx"."t" values (1, 1), (2, 2)"#)
        .await
        .unwrap();
    client.batch_execute("begin").await.unwrap();
    let n = client
        .execute(r#"update "dfs://tx"."t" set v = v + 10"#, &[])
        .await
        .unwrap();
    assert_eq!(n, 2);
    let row = client
        .query_one(r#"select sum(v) from "dfs://tx"."t""#, &[])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, i64>(0),
        3,
        "an UPDATE was visible before COMMIT"
    );
    let e = client
        .execute(r#"delete from "dfs://tx"."t" where k = 1"#, &[])
        .await
        .expect_err("a second rewrite of the table in one block");
    assert_eq!(sqlstate(&e), "0A000", "{e}");
    assert!(message(&e).contains("only write of its table"), "{e:?}");
    client.batch_execute("rollback").await.unwrap();
    client.batch_execute("begin").await.unwrap();
    client
        .execute(r#"delete from "dfs://tx"."t" where k = 1"#, &[])
        .await
        .unwrap();
    client.batch_execute("commit").await.unwrap();
    let row = client
        .query_one(r#"select count(*), sum(v) from "dfs://tx"."t""#, &[])
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 2));

    // ROLLBACK TO SAVEPOINT cannot take back rows written after the savepoint.
    client
        .batch_execute(r#"begin; savepoint a; insert into "dfs://tx"."t" values (1, 5)"#)
        .await
        .unwrap();
    let e = client
        .batch_execute("rollback to savepoint a")
        .await
        .expect_err("rows written after a savepoint were kept by ROLLBACK TO it");
    assert_eq!(sqlstate(&e), "0A000", "{e}");
    client.batch_execute("commit").await.unwrap();
    assert_eq!(count(&client, "t").await, 1);
    // With nothing written since, it ends a failed block's failure and the block goes on.
    client
        .batch_execute(r#"begin; insert into "dfs://tx"."t" values (1, 5); savepoint b"#)
        .await
        .unwrap();
    client
        .batch_execute("select * from nope")
        .await
        .expect_err("a missing table");
    client
        .batch_execute("rollback to savepoint b; commit")
        .await
        .unwrap();
    assert_eq!(count(&client, "t").await, 2);

    // DDL in a block takes effect at once (SQLAlchemy's to_sql: CREATE TABLE, then INSERTs).
    client
        .batch_execute(
            r#"begin;
               create table "dfs://tx"."w"(k INT, v LONG) partitioned by k;
               insert into "dfs://tx"."w" values (1, 1);
               rollback"#,
        )
        .await
        .unwrap();
    assert_eq!(count(&client, "w").await, 0);

    // psycopg releases its prepared statements after a ROLLBACK with DEALLOCATE ALL.
    let m = client
        .simple_query("deallocate all; deallocate prepare _pg3_0")
        .await
        .unwrap();
    assert_eq!(m.len(), 2);
}
