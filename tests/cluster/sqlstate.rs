//! An error raised on another data node reaches the client as it was raised there: the same
//! SQLSTATE, the same message, and retryable (PostgreSQL's retry HINT) exactly when it is. The
//! rows of the tables here all live in partitions the second data node owns, so a statement
//! sent to the first data node fails on the second one and its error crosses Arrow Flight; the
//! same statement sent to the second data node raises the same error there, locally, which is
//! what the client of the first one must see.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::Client;

use crate::common::cluster::{parquet_files_by_node, TestCluster};
use porpoise::frontend::error::RETRY_HINT;

const DB: &str = "\"dfs://sqlstate\"";
const T: &str = "\"dfs://sqlstate\".\"t\"";
/// The same columns; one of its data files on the second data node is corrupt.
const CORRUPT: &str = "\"dfs://sqlstate\".\"corrupt\"";

/// What a client sees of a failed statement.
#[derive(Debug, PartialEq, Eq)]
struct Failure {
    code: String,
    message: String,
    hint: Option<String>,
}

impl Failure {
    fn retryable(&self) -> bool {
        self.hint.as_deref() == Some(RETRY_HINT)
    }
}

/// Runs `sql`, which must fail with an ErrorResponse.
async fn failure(client: &Client, sql: &str) -> Failure {
    let e = client
        .simple_query(sql)
        .await
        .expect_err(&format!("{sql:.120} should fail"));
    failure_of(sql, &e)
}

fn failure_of(sql: &str, e: &tokio_postgres::Error) -> Failure {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("{sql:.120}: no ErrorResponse: {e:?}"));
    Failure {
        code: db.code().code().to_string(),
        message: db.message().to_string(),
        hint: db.hint().map(str::to_string),
    }
}

/// The Parquet files under `dir`.
fn parquet_paths(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.insert(p);
            }
        }
    }
    out
}

/// The partitions (k = 0..19) the second data node owns. Placement is per database, so one
/// row per key in a table of its own shows it: each lands in the files of its owner.
async fn keys_of_second_node(cluster: &TestCluster, client: &Client) -> Vec<i32> {
    let second = &cluster.datanodes()[1];
    client
        .batch_execute(&format!(
            "create database {DB} partitioned by VALUE(0..19);
             create table {DB}.\"owners\"(k INT) partitioned by k;"
        ))
        .await
        .expect("create the database");
    let mut keys = Vec::new();
    for k in 0..20 {
        let before = parquet_files_by_node(cluster);
        client
            .batch_execute(&format!("insert into {DB}.\"owners\" values ({k})"))
            .await
            .expect("insert a row");
        let after = parquet_files_by_node(cluster);
        if after[second] > before[second] {
            keys.push(k);
        }
    }
    assert!(
        !keys.is_empty() && keys.len() < 20,
        "both data nodes own partitions: the second owns {keys:?}"
    );
    keys
}

/// Creates `table` and fills it with one row per key of the second data node (`n = 1`,
/// `s = 'abc'`); checks that its files are all on that node. Returns them.
async fn table_on_second_node(
    cluster: &TestCluster,
    client: &Client,
    table: &str,
    keys: &[i32],
) -> Vec<PathBuf> {
    let homes: Vec<PathBuf> = cluster
        .datanodes()
        .iter()
        .map(|a| cluster.home().join(a))
        .collect();
    client
        .batch_execute(&format!(
            "create table {table}(k INT, n INT, s STRING, d DATE) partitioned by k"
        ))
        .await
        .expect("create the table");
    let before: Vec<_> = homes.iter().map(|h| parquet_paths(h)).collect();
    let rows: Vec<String> = keys
        .iter()
        .map(|k| format!("({k}, 1, 'abc', '2023-01-01')"))
        .collect();
    client
        .batch_execute(&format!("insert into {table} values {}", rows.join(",")))
        .await
        .expect("insert the rows");
    let after: Vec<_> = homes.iter().map(|h| parquet_paths(h)).collect();
    assert_eq!(
        before[0], after[0],
        "no row of {table} is on the first node"
    );
    let files: Vec<PathBuf> = after[1].difference(&before[1]).cloned().collect();
    assert!(
        !files.is_empty(),
        "the rows of {table} are on the second node"
    );
    files
}

/// Ends `query` on `client` with cancel requests (one every 100 ms: one sent before the query
/// started is ignored, as in PostgreSQL), with a deadline.
async fn cancelled(client: &Client, sql: &str) -> Failure {
    let token = client.cancel_token();
    let query = client.simple_query(sql);
    tokio::pin!(query);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        tokio::select! {
            result = &mut query => {
                let e = result.expect_err("the query should be cancelled");
                return failure_of(sql, &e);
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                assert!(tokio::time::Instant::now() < deadline, "{sql} was not cancelled");
                token
                    .cancel_query(tokio_postgres::NoTls)
                    .await
                    .expect("send the cancel request");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_raised_on_another_data_node_reach_the_client_as_raised_there() {
    let cluster = TestCluster::builder().controllers(1).datanodes(2).build();
    // `via`: statements it coordinates fail on the other node; `local`: they fail right there.
    let via = cluster.client(0).await;
    let local = cluster.client(1).await;
    let keys = keys_of_second_node(&cluster, &via).await;
    table_on_second_node(&cluster, &via, T, &keys).await;
    let corrupt = table_on_second_node(&cluster, &via, CORRUPT, &keys).await;
    // One file only, so that the error names the same file whichever node reads first.
    let victim = &corrupt[0];
    let len = std::fs::metadata(victim).expect("a data file").len() as usize;
    std::fs::write(victim, vec![0u8; len]).expect("corrupt a data file");

    // Raised on the owner of the rows: UPDATE and DELETE run there (`q.rewrite`), a scan
    // fragment streams from there (`do_get`, failing midway).
    let on_owner = [
        (
            "22P02",
            format!("delete from {T} where cast(s as int) = 1"),
            "Cast error: Cannot cast string 'abc' to value of Int32 type",
        ),
        (
            "22012",
            format!("update {T} set n = n / (n - n)"),
            "Divide by zero error",
        ),
        (
            "22007",
            format!("delete from {T} where to_timestamp(s, '%Y-%m-%d') > now()"),
            "Error parsing timestamp from 'abc' using format '%Y-%m-%d'",
        ),
        (
            "22008",
            format!("update {T} set d = d + n * 10000000000"),
            "Overflowing on 864000000000000",
        ),
        (
            "22000",
            format!("delete from {T} where make_date(2023, n + 12, 1) > d"),
            "Month value '13' is out of range",
        ),
        (
            "58030",
            format!("select * from {CORRUPT}"),
            "Corrupt footer",
        ),
        (
            "58030",
            format!("select count(*) from {CORRUPT} where n = 1"),
            "Corrupt footer",
        ),
    ];
    // Raised where the statement is planned, whichever node holds the rows.
    let deep = format!("select k from {T} where k = {}1", "1 + ".repeat(1001));
    let planned = [
        (
            "42702",
            format!("select k from {T} a join {T} b on a.k = b.k"),
            "Ambiguous reference to unqualified field k",
        ),
        (
            "42803",
            format!("select k, n from {T} group by k"),
            "must appear in the GROUP BY clause",
        ),
        ("54001", deep, "statement too complex"),
    ];
    for (code, sql, text) in on_owner.iter().chain(&planned) {
        let there = failure(&local, sql).await;
        let here = failure(&via, sql).await;
        assert_eq!(here, there, "{sql:.120}");
        assert_eq!(here.code, *code, "{sql:.120}: {here:?}");
        assert!(here.message.contains(text), "{sql:.120}: {here:?}");
        assert!(!here.retryable(), "{sql:.120}: {here:?}");
    }

    // A cancelled statement whose rows stream from the other node.
    let endless = format!("select count(*) from {T}, generate_series(1, 10000000000)");
    let there = cancelled(&local, &endless).await;
    let here = cancelled(&via, &endless).await;
    assert_eq!(here, there);
    assert_eq!(here.code, "57014", "{here:?}");
    assert_eq!(here.message, "canceling statement due to user request");
    assert!(!here.retryable());

    // Both nodes still answer.
    for client in [&via, &local] {
        let row = client
            .query_one(&format!("select count(*) from {T}"), &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), keys.len() as i64);
    }
}

/// A commit the controller never answered is in doubt (08007) and must not be retried
/// blindly: no retry hint, though the transaction spans both data nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_doubt_commit_is_08007_and_not_retryable() {
    let mut cluster = TestCluster::builder().controllers(1).datanodes(2).build();
    let ctl = cluster.controllers()[0].clone();
    let client = cluster.client(0).await;
    let keys = keys_of_second_node(&cluster, &client).await;
    table_on_second_node(&cluster, &client, T, &keys).await;

    cluster.kill9(&ctl);
    cluster.start_with_env(&ctl, &[("PORPOISE_CRASH_AT", "ctl-commit-received")]);
    // Rows for both nodes: one for each key.
    let rows: Vec<String> = (0..20)
        .map(|k| format!("({k}, 2, 'x', '2023-01-02')"))
        .collect();
    let sql = format!("insert into {T} values {}", rows.join(","));
    let got = failure(&client, &sql).await;
    assert_eq!(got.code, "08007", "{got:?}");
    assert!(
        got.message.starts_with("the outcome of transaction"),
        "{got:?}"
    );
    assert!(!got.retryable(), "{got:?}");
    assert!(
        !cluster.is_running(&ctl),
        "the controller crashed on the commit"
    );
}

/// A retryable error of the other node stays retryable: a scan fragment whose node cannot get
/// the metadata version the statement reads at fails with 40001 and the retry hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_error_of_another_data_node_stays_retryable() {
    let mut cluster = TestCluster::builder().controllers(1).datanodes(2).build();
    let second = cluster.datanodes()[1].clone();
    let client = cluster.client(0).await;
    let keys = keys_of_second_node(&cluster, &client).await;
    table_on_second_node(&cluster, &client, T, &keys).await;

    // Every metadata change reaches the second node 15 s late, past the 10 s a scan fragment
    // waits for the version it reads at.
    cluster.kill9(&second);
    cluster.start_with_env(&second, &[("PORPOISE_DELAY_AT", "metadata-received:15000")]);
    client
        .batch_execute(&format!(
            "create table {DB}.\"newer\"(k INT) partitioned by k"
        ))
        .await
        .expect("a metadata change");
    let got = failure(&client, &format!("select count(*) from {T}")).await;
    assert_eq!(got.code, "40001", "{got:?}");
    assert!(
        got.message
            .starts_with("this data node's metadata did not reach version")
            && got.message.ends_with("in time"),
        "{got:?}"
    );
    assert!(got.retryable(), "{got:?}");
}
