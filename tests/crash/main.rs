//! Crash tests: `kill -9` a real server process in the middle of a COPY and check, after a
//! restart, that the table holds everything acknowledged before and either none or all of the
//! COPY (all of it whenever the COPY was acknowledged).

#[path = "../common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{parquet_files, TestServer};
use futures::SinkExt;

const TABLE: &str = r#""dfs://crash"."bars""#;

/// Rows `first..first + n` as CSV: `(id, day, value)`, spread over `days` daily partitions.
fn rows_csv(first: u64, n: u64, days: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n as usize * 24);
    for i in first..first + n {
        out.extend_from_slice(format!("{i},2023-01-{:02},{}\n", 1 + i % days, i * 3).as_bytes());
    }
    out
}

/// `(count, sum(id))` of the table.
async fn contents(client: &tokio_postgres::Client) -> (i64, i64) {
    let row = client
        .query_one(
            &format!("select count(*), coalesce(sum(id), 0) from {TABLE}"),
            &[],
        )
        .await
        .expect("count");
    (row.get(0), row.get(1))
}

fn sum_ids(first: u64, n: u64) -> i64 {
    (first..first + n).map(|i| i as i64).sum()
}

async fn setup(server: &TestServer) -> tokio_postgres::Client {
    let client = server.client().await;
    client
        .batch_execute(&format!(
            r#"create database "dfs://crash" partitioned by VALUE(2023.01.01..2023.01.10);
               create table {TABLE}(id LONG, day DATE, value LONG) partitioned by day;"#
        ))
        .await
        .expect("create");
    client
}

/// Sends a whole COPY without finishing it. Returns the sink.
async fn send_copy(
    client: &tokio_postgres::Client,
    data: &[u8],
) -> std::pin::Pin<Box<tokio_postgres::CopyInSink<Bytes>>> {
    let sink = client
        .copy_in(&format!("COPY {TABLE} FROM STDIN WITH (FORMAT csv)"))
        .await
        .expect("copy_in");
    let mut sink = Box::pin(sink);
    for chunk in data.chunks(64 * 1024) {
        sink.send(Bytes::copy_from_slice(chunk))
            .await
            .expect("copy data");
    }
    sink
}

#[tokio::test]
async fn kill_during_copy_keeps_none_of_it() {
    let mut server = TestServer::start();
    let client = setup(&server).await;
    // Acknowledged before the crash.
    client
        .execute(
            &format!("insert into {TABLE} values (1, '2023-01-02', 3), (2, '2023-01-03', 6)"),
            &[],
        )
        .await
        .expect("insert");
    let before = contents(&client).await;
    assert_eq!(before, (2, 3));

    // A COPY large enough that the server writes some of its files before it ends.
    let data_dir = server.home().join("datanode").join("data");
    let files_before = parquet_files(&data_dir);
    let copy_client = server.client().await;
    // One partition, so that its first file is written long before the COPY ends.
    let data = rows_csv(1_000, 700_000, 1);
    let copy = tokio::spawn(async move {
        let sink = send_copy(&copy_client, &data).await;
        // Never finished: the server dies first.
        std::future::pending::<()>().await;
        drop(sink);
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while parquet_files(&data_dir) == files_before {
        assert!(Instant::now() < deadline, "the COPY never staged a file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    copy.abort();

    server.restart();
    let client = server.client().await;
    assert_eq!(
        contents(&client).await,
        before,
        "a COPY that was cut off left rows behind"
    );
    // Its staged files are gone too.
    assert_eq!(
        parquet_files(&data_dir),
        files_before,
        "staged files of the dead COPY remain"
    );
    // And the table takes writes again.
    client
        .execute(
            &format!("insert into {TABLE} values (3, '2023-01-04', 9)"),
            &[],
        )
        .await
        .expect("insert after restart");
    assert_eq!(contents(&client).await, (3, 6));
}

#[tokio::test]
async fn kill_around_commit_is_all_or_nothing() {
    let mut server = TestServer::start();
    let client = setup(&server).await;
    let mut expected = (0i64, 0i64);
    let n = 150_000u64;
    // Kill at several moments around the end of the COPY: before, during and after its commit.
    for (round, delay_ms) in [0u64, 3, 15, 60, 400].into_iter().enumerate() {
        let first = 10_000_000 * (round as u64 + 1);
        let copy_client = server.client().await;
        let data = rows_csv(first, n, 10);
        let sink = send_copy(&copy_client, &data).await;
        let finish = tokio::spawn(async move {
            let mut sink = sink;
            let r = sink.as_mut().finish().await;
            drop(copy_client);
            r
        });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill9();
        let acknowledged = matches!(finish.await, Ok(Ok(rows)) if rows == n);

        server.restart();
        let client = server.client().await;
        let after = contents(&client).await;
        let with_copy = (expected.0 + n as i64, expected.1 + sum_ids(first, n));
        if acknowledged {
            assert_eq!(
                after, with_copy,
                "round {round}: an acknowledged COPY was lost"
            );
        } else {
            assert!(
                after == expected || after == with_copy,
                "round {round}: partial COPY visible: {after:?}, expected {expected:?} or {with_copy:?}"
            );
        }
        expected = after;
        drop(client);
    }
    drop(client);
}

#[tokio::test]
async fn acknowledged_copy_survives_kill() {
    let mut server = TestServer::start();
    let client = setup(&server).await;
    let n = 300_000u64;
    let sink = send_copy(&client, &rows_csv(0, n, 10)).await;
    let mut sink = sink;
    assert_eq!(sink.as_mut().finish().await.expect("copy"), n);
    server.kill9();
    server.restart();
    let client = server.client().await;
    assert_eq!(contents(&client).await, (n as i64, sum_ids(0, n)));
    // Per-partition counts are intact as well.
    let rows = client
        .query(
            &format!("select day, count(*) from {TABLE} group by day order by day"),
            &[],
        )
        .await
        .expect("group by");
    assert_eq!(rows.len(), 10);
    for r in rows {
        assert_eq!(r.get::<_, i64>(1), (n / 10) as i64);
    }
}

/// Restarts `server` to crash at `point`, runs `sql` there (the server dies under it, so it
/// fails), then starts the server again without a crash point; a client of it.
async fn crash_at(server: &mut TestServer, point: &str, sql: &str) -> tokio_postgres::Client {
    server.restart_with_crash_point(Some(point));
    let client = server.client().await;
    assert!(
        client.batch_execute(sql).await.is_err(),
        "the server should have crashed at {point}"
    );
    assert!(
        server.wait_exit(Duration::from_secs(30)).is_some(),
        "the crash point {point} was not reached"
    );
    server.restart_with_crash_point(None);
    server.client().await
}

/// Crashes exactly on each side of the commit point: a transaction prepared but not committed
/// is gone after the restart; one committed but not yet published (the client never got its
/// acknowledgement) is there, complete.
#[tokio::test]
async fn crash_points_on_both_sides_of_the_commit() {
    let mut server = TestServer::start();
    let client = setup(&server).await;
    client
        .execute(
            &format!("insert into {TABLE} values (1, '2023-01-02', 3)"),
            &[],
        )
        .await
        .expect("insert");
    drop(client);
    let data_dir = server.home().join("datanode").join("data");
    let files = parquet_files(&data_dir);

    // 1. Prepared, not committed.
    let insert = format!(
        "insert into {TABLE} values (2, '2023-01-03', 6), (3, '2023-01-04', 9), (4, '2023-01-05', 12)"
    );
    let client = crash_at(&mut server, "txn-prepared", &insert).await;
    assert_eq!(
        contents(&client).await,
        (1, 1),
        "an uncommitted transaction is visible"
    );
    assert_eq!(
        parquet_files(&data_dir),
        files,
        "its staged files were not removed"
    );
    drop(client);

    // 2. Committed, not published, never acknowledged.
    let client = crash_at(&mut server, "txn-committed", &insert).await;
    assert_eq!(
        contents(&client).await,
        (4, 10),
        "a committed transaction was lost or half published"
    );
}

/// A transaction block that wrote two tables commits both in one entry: the server killed
/// after both were prepared leaves neither after the restart (and none of their files), killed
/// right after the commit point leaves both, complete.
#[tokio::test]
async fn a_block_writing_two_tables_survives_a_crash_whole_or_not_at_all() {
    const OTHER: &str = r#""dfs://crash"."other""#;
    let mut server = TestServer::start();
    let client = setup(&server).await;
    client
        .batch_execute(&format!(
            "create table {OTHER}(id LONG, day DATE, value LONG) partitioned by day"
        ))
        .await
        .expect("create");
    drop(client);
    let data_dir = server.home().join("datanode").join("data");
    let files = parquet_files(&data_dir);
    let block = format!(
        "begin;
         insert into {TABLE} values (1, '2023-01-02', 3), (2, '2023-01-03', 6);
         insert into {OTHER} values (10, '2023-01-04', 9);
         commit"
    );
    let both = |client: tokio_postgres::Client| async move {
        let other: i64 = client
            .query_one(&format!("select count(*) from {OTHER}"), &[])
            .await
            .expect("count")
            .get(0);
        (contents(&client).await, other)
    };

    let client = crash_at(&mut server, "txn-prepared", &block).await;
    assert_eq!(
        both(client).await,
        ((0, 0), 0),
        "an uncommitted block is visible"
    );
    assert_eq!(
        parquet_files(&data_dir),
        files,
        "its staged files were not removed"
    );

    let client = crash_at(&mut server, "txn-committed", &block).await;
    assert_eq!(
        both(client).await,
        ((2, 3), 1),
        "a committed block was lost or half published"
    );
}
