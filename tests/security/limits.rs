//! Memory and input limits: one statement of a user without privileges cannot take a node's
//! memory (`maxMemSize`, `memLimitOfQueryResult`), and a COPY line cannot make it buffer
//! without bound (`maxCopyLineSize`). Each bomb fails with its SQLSTATE and a message naming
//! the key, and the node goes on serving.

use futures::SinkExt;

use crate::common::{connect, first_value, TestServer};

/// A server with small limits: 1 GB for all queries, 256 MB for one, 1 MB COPY lines.
fn small_server() -> TestServer {
    TestServer::start_with_config(&[
        ("maxMemSize", "1"),
        ("memLimitOfQueryResult", "0.25"),
        ("maxCopyLineSize", "1"),
    ])
}

/// The SQLSTATE and message of a statement that must fail.
async fn failure(client: &tokio_postgres::Client, sql: &str) -> (String, String) {
    let e = client
        .simple_query(sql)
        .await
        .expect_err(&format!("{sql} must fail"));
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("{sql}: not a server error: {e:?}"));
    (db.code().code().to_string(), db.message().to_string())
}

/// The peak resident memory of a process (`VmHWM`), in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bombs_of_a_user_without_privileges_fail_and_the_node_keeps_serving() {
    let mut server = small_server();
    let admin = server.client().await;
    admin
        .batch_execute("create user mallory with password 'x'")
        .await
        .unwrap();
    let mallory = connect(&server.url_for("mallory", "x")).await.unwrap();
    let pid = server.pid().expect("running");
    let before = peak_memory(pid);
    // Values built by one function call: refused before they are built (54000).
    for sql in [
        "select length(repeat('x', 2000000000))",
        "select length(lpad('x', 1000000000))",
        "select length(rpad('x', 1000000000, 'yz'))",
        "select length(replace(repeat('x', 100000), 'x', repeat('y', 100000)))",
        "select cardinality(array_repeat(1, 1000000000))",
        "select cardinality(range(1000000000))",
        "select cardinality(generate_series(1, 1000000000))",
        // Per row too: 10 000 rows of 100 KB each is 1 GB for one batch.
        "select max(length(repeat('x', 100000 + x))) from generate_series(1, 10000) t(x)",
    ] {
        let (code, message) = failure(&mallory, sql).await;
        assert_eq!(code, "54000", "{sql}: {message}");
        assert!(
            message.starts_with("requested length too large")
                && message.contains("memLimitOfQueryResult"),
            "{sql}: {message}"
        );
        assert_eq!(first_value(&mallory, "select 1").await, "1", "after {sql}");
    }
    // Memory DataFusion's operators reserve: the query stops at 256 MB (53200).
    for sql in [
        "select cardinality(array_agg(x)) from generate_series(1, 50000000) t(x)",
        "select length(string_agg(repeat('x', 1000), ',')) from generate_series(1, 1000000) t(x)",
    ] {
        let (code, message) = failure(&mallory, sql).await;
        assert_eq!(code, "53200", "{sql}: {message}");
        assert!(
            message.starts_with("out of memory") && message.contains("memLimitOfQueryResult"),
            "{sql}: {message}"
        );
        assert_eq!(first_value(&mallory, "select 1").await, "1", "after {sql}");
    }
    // Below the limits the same functions work.
    assert_eq!(
        first_value(&mallory, "select length(repeat('ab', 1000000))").await,
        "2000000"
    );
    assert_eq!(
        first_value(
            &mallory,
            "select cardinality(array_agg(x)) from generate_series(1, 100000) t(x)"
        )
        .await,
        "100000"
    );
    // The node is whole: still running, new sessions get in, and no bomb got near its size.
    assert!(server.exit_status().is_none(), "{}", server.log());
    let fresh = server.client().await;
    assert_eq!(first_value(&fresh, "select 1").await, "1");
    let grown = peak_memory(pid).saturating_sub(before);
    assert!(
        grown < 1 << 30,
        "the bombs took {} MB of the server's memory",
        grown >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_line_longer_than_the_limit_fails_at_once() {
    let mut server = small_server();
    let client = server.client().await;
    client
        .batch_execute(
            r#"create database "dfs://lim" partitioned by VALUE([1, 2]);
               create table "dfs://lim"."t"(k INT, s STRING) partitioned by k;"#,
        )
        .await
        .unwrap();
    let pid = server.pid().expect("running");
    let before = peak_memory(pid);
    // 200 MB of one line, sent in 1 MB messages: the server refuses it at its first MB and
    // the client is told as soon as it looks.
    let sink = client
        .copy_in::<_, bytes::Bytes>(r#"copy "dfs://lim"."t" from stdin"#)
        .await
        .unwrap();
    futures::pin_mut!(sink);
    let chunk = bytes::Bytes::from(vec![b'x'; 1 << 20]);
    let mut sent = 0usize;
    let mut refused_early = false;
    let mut result = sink.send(bytes::Bytes::from_static(b"1\t")).await;
    while result.is_ok() && sent < 200 << 20 {
        result = sink.send(chunk.clone()).await;
        sent += chunk.len();
    }
    if result.is_err() {
        refused_early = true;
    }
    let error = match sink.as_mut().finish().await {
        Err(e) => e,
        Ok(rows) => panic!("a 200 MB line was copied ({rows} rows)"),
    };
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {error:?}"));
    assert_eq!(db.code().code(), "54000", "{}", db.message());
    assert!(
        db.message().contains("maxCopyLineSize = 1 MB"),
        "{}",
        db.message()
    );
    println!(
        "client sent {} MB before it was told (refused early: {refused_early})",
        sent >> 20
    );
    let grown = peak_memory(pid).saturating_sub(before);
    assert!(
        grown < 100 << 20,
        "the server buffered the line: its peak memory grew by {} MB",
        grown >> 20
    );
    // Nothing was copied, and the next COPY of short lines works.
    assert_eq!(
        first_value(&client, r#"select count(*) from "dfs://lim"."t""#).await,
        "0"
    );
    let sink = client
        .copy_in::<_, bytes::Bytes>(r#"copy "dfs://lim"."t" from stdin"#)
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"1\tshort\n2\tline\n"))
        .await
        .unwrap();
    assert_eq!(sink.as_mut().finish().await.unwrap(), 2);
    assert!(server.exit_status().is_none(), "{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_default_limits_one_value_cannot_exceed_a_gigabyte() {
    let server = TestServer::start();
    let client = server.client().await;
    for sql in [
        "select length(repeat('x', 2000000000))",
        "select length(lpad('x', 1000000000))",
        "select cardinality(range(200000000))",
    ] {
        let (code, message) = failure(&client, sql).await;
        assert_eq!(code, "54000", "{sql}: {message}");
        assert!(message.contains("at most 1 GB"), "{sql}: {message}");
    }
    assert_eq!(first_value(&client, "select 1").await, "1");
}
