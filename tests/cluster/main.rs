//! A cluster of real processes: controllers (1 or 3) and data nodes started from a cluster
//! directory by [`TestCluster`] (or by `porpoise up`), used through pgwire and the HTTP status
//! pages, with `kill -9` of controllers and data nodes in the middle of writes. [`sqlstate`]:
//! errors raised on one data node reach the client of another unchanged. [`copyio`]: COPY in
//! and out of a table spread over both data nodes.

#[path = "../common/mod.rs"]
mod common;
mod copyio;
mod not_null;
mod sqlstate;
mod txn;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::{http_get, parquet_files_by_node, TestCluster};

const DB: &str = "\"dfs://c\"";

/// A database of 10 VALUE partitions (k = 0..9) and a table `t(id, k, v)` partitioned by k.
async fn create_table(client: &tokio_postgres::Client) {
    client
        .batch_execute(&format!(
            "create database {DB} partitioned by VALUE(0..9);
             create table {DB}.\"t\"(id LONG, k INT, v DOUBLE) partitioned by k;"
        ))
        .await
        .expect("create the table");
}

/// Rows `from..to` as an INSERT statement (k = id % 10 spreads them over every partition).
fn insert_rows(from: i64, to: i64) -> String {
    let values: Vec<String> = (from..to)
        .map(|i| format!("({i}, {}, {}.5)", i % 10, i))
        .collect();
    format!("insert into {DB}.\"t\" values {}", values.join(","))
}

async fn count(client: &tokio_postgres::Client) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(&format!("select count(*) from {DB}.\"t\""), &[])
        .await?;
    Ok(row.get(0))
}

/// Every id in the table, checking none is there twice.
async fn ids(client: &tokio_postgres::Client) -> BTreeSet<i64> {
    let rows = client
        .query(&format!("select id from {DB}.\"t\""), &[])
        .await
        .expect("read the ids");
    let mut seen = BTreeSet::new();
    for r in rows {
        let id: i64 = r.get(0);
        assert!(seen.insert(id), "id {id} is in the table twice");
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_data_node_serves_the_whole_cluster() {
    // TLS on the ports: the status pages take an admin's password only over TLS.
    let cluster = TestCluster::builder().controllers(1).datanodes(2).build();
    let dn1 = cluster.client(0).await;
    let dn2 = cluster.client(1).await;
    create_table(&dn1).await;
    // Written through one node, read through the other: rows land on both nodes.
    dn2.batch_execute(&insert_rows(0, 1000)).await.unwrap();
    assert_eq!(count(&dn1).await.unwrap(), 1000);
    let files = parquet_files_by_node(&cluster);
    assert!(
        files.values().all(|n| *n > 0),
        "partitions are spread over both data nodes: {files:?}"
    );
    // COPY through one node, visible on the other.
    let sink = dn1
        .copy_in(&format!("copy {DB}.\"t\" from stdin"))
        .await
        .unwrap();
    let data: String = (1000..3000)
        .map(|i| format!("{i}\t{}\t1\n", i % 10))
        .collect();
    futures::pin_mut!(sink);
    use futures::SinkExt;
    sink.send(bytes::Bytes::from(data)).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2000);
    assert_eq!(count(&dn2).await.unwrap(), 3000);
    // UPDATE and DELETE change the rows of every node in one statement.
    let updated = dn1
        .execute(&format!("update {DB}.\"t\" set v = -1 where id < 100"), &[])
        .await
        .unwrap();
    assert_eq!(updated, 100);
    let deleted = dn2
        .execute(&format!("delete from {DB}.\"t\" where k = 3 or k = 4"), &[])
        .await
        .unwrap();
    assert_eq!(deleted, 600);
    let row = dn1
        .query_one(
            &format!("select count(*), count(*) filter (where v = -1) from {DB}.\"t\""),
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (2400, 80));
    // Filters and projection are pushed to the owners: each returns only its matching rows.
    let row = dn2
        .query_one(
            "select count(*), sum(id) from loadTable('dfs://c', 't') where k = 7",
            &[],
        )
        .await
        .unwrap();
    let expected: i64 = (0..3000).filter(|i| i % 10 == 7).sum();
    assert_eq!(row.get::<_, i64>(0), 300);
    assert_eq!(row.get::<_, i64>(1), expected);

    // Controller functions answer on any data node.
    let ctl = cluster.controllers()[0].clone();
    for c in [&dn1, &dn2] {
        let row = c
            .query_one("select getControllerAlias()", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), ctl);
    }

    // Status pages.
    let (code, body) = cluster.admin_get(&cluster.datanodes()[0], "/cluster/stats");
    assert_eq!(code, 200, "{body}");
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["health"], "green", "{body}");
    assert_eq!(stats["leader"], ctl.as_str(), "{body}");
    let (code, body) = cluster.admin_get(&ctl, "/datanodes");
    assert_eq!(code, 200);
    let nodes: serde_json::Value = serde_json::from_str(&body).unwrap();
    let reachable: Vec<bool> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["reachable"].as_bool().unwrap())
        .collect();
    assert_eq!(reachable, vec![true, true], "{body}");
    let (code, body) = cluster.admin_get(&ctl, "/raft/stats");
    assert_eq!(code, 200);
    assert!(body.contains("\"state\":\"Leader\""), "{body}");
    let (code, body) = cluster.http_get(&ctl, "/metrics");
    assert_eq!(code, 200);
    assert!(
        body.contains(&format!("porpoise_raft_is_leader{{node=\"{ctl}\"}} 1")),
        "{body}"
    );
    assert!(
        body.contains(&format!("porpoise_tables{{node=\"{ctl}\"}} 1")),
        "{body}"
    );
}

/// The controller's last raft log index, from its `/metrics`.
fn raft_log_index(cluster: &TestCluster, ctl: &str) -> u64 {
    let (code, body) = cluster.http_get(ctl, "/metrics");
    assert_eq!(code, 200);
    body.lines()
        .find(|l| l.starts_with("porpoise_raft_last_log_index{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no raft log index in {body}")) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_costs_the_controller_one_log_entry() {
    let cluster = TestCluster::builder().controllers(1).datanodes(2).build();
    let ctl = cluster.controllers()[0].clone();
    let client = cluster.client(0).await;
    create_table(&client).await;
    client.batch_execute(&insert_rows(0, 1)).await.unwrap();
    let before = raft_log_index(&cluster, &ctl);
    // Single-row transactions, on this node's partitions and on the other node's.
    for i in 1..=32 {
        client.batch_execute(&insert_rows(i, i + 1)).await.unwrap();
    }
    let entries = raft_log_index(&cluster, &ctl) - before;
    // Each commit is an entry; the transactions are begun 16 at a time (two more entries),
    // and a participant may report a few publications itself when a commit is slow to follow
    // (a loaded machine). Beginning each transaction on its own would take 64.
    assert!(
        (32..=40).contains(&entries),
        "32 transactions took {entries} raft log entries"
    );
    assert_eq!(ids(&client).await, (0..=32).collect::<BTreeSet<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_controller_leader_loses_and_repeats_no_write() {
    let mut cluster = TestCluster::builder().controllers(3).datanodes(2).build();
    let client = cluster.client(0).await;
    create_table(&client).await;
    let acked = Arc::new(Mutex::new(Vec::<(i64, i64)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop) = (acked.clone(), stop.clone());
        let url = cluster.url(0);
        tokio::spawn(async move {
            let client = common::connect(&url).await.unwrap();
            let mut next = 0i64;
            let mut failed = 0;
            while !stop.load(Ordering::Relaxed) {
                let (from, to) = (next, next + 10);
                next = to;
                match client.batch_execute(&insert_rows(from, to)).await {
                    Ok(()) => acked.lock().unwrap().push((from, to)),
                    Err(_) => failed += 1,
                }
            }
            failed
        })
    };
    let acks = |n: usize| {
        let acked = acked.clone();
        move || acked.lock().unwrap().len() >= n
    };
    cluster.wait_until("writes before the kill", Duration::from_secs(60), acks(20));
    let leader = cluster.leader().expect("a leader");
    cluster.kill9(&leader);
    let took = cluster.wait_until("a new leader", Duration::from_secs(10), || {
        cluster.leader().is_some_and(|l| l != leader)
    });
    println!("new controller leader after {took:?}");
    let new_leader = cluster.leader().unwrap();
    let row = client
        .query_one("select getcontrolleralias()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), new_leader);
    let before = acked.lock().unwrap().len();
    cluster.wait_until(
        "writes after the kill",
        Duration::from_secs(60),
        acks(before + 20),
    );
    stop.store(true, Ordering::Relaxed);
    let failed = writer.await.unwrap();
    println!("statements refused around the failover: {failed}");
    let stored = ids(&client).await;
    for (from, to) in acked.lock().unwrap().iter() {
        for id in *from..*to {
            assert!(stored.contains(&id), "acknowledged id {id} is missing");
        }
    }
    // The killed controller rejoins and the group is whole again.
    cluster.start(&leader);
    let any = cluster.datanodes()[0].clone();
    cluster.wait_until("health green", Duration::from_secs(30), || {
        cluster
            .admin_get(&any, "/cluster/stats")
            .1
            .contains("\"health\":\"green\"")
    });
}

/// A controller leader that cannot commit (both followers paused) answers a write with
/// 57P03 when its wait ends instead of holding the caller: a command whose log entry a
/// snapshot later replaces would otherwise never be answered, and the replication scheduler
/// waited on such a write for good. The command stays in the leader's log and is applied
/// once the followers are back, as the answer says it may be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_leader_that_cannot_commit_answers_writes_in_bounded_time() {
    use porpoise::controller::metadata::{Command, UserMeta};
    use porpoise::controller::service::{WriteReply, WriteRequest, WRITE};
    use porpoise::rpc::RpcError;
    use porpoise::sqlstate::ErrorCode;

    let mut cluster = TestCluster::builder().controllers(3).datanodes(1).build();
    let leader = cluster.leader().expect("a leader");
    let followers = cluster.followers();
    let req = WriteRequest {
        cmd: Command::CreateUser {
            user: UserMeta {
                name: "bounded".to_string(),
                secret: porpoise::controller::secret::ScramSecret::from_salted_password(
                    vec![1, 2, 3],
                    4096,
                    &[9; 32],
                ),
                is_admin: false,
                privileges: Default::default(),
            },
            if_not_exists: false,
        },
    };
    let peers = cluster.peers_as(&cluster.datanodes()[0]);
    let addr = format!("127.0.0.1:{}", cluster.port(&leader));
    for f in &followers {
        cluster.pause(f);
    }
    // Far longer than the leader waits: a caller timeout here means the leader never answered.
    let answer = peers
        .call::<_, WriteReply>(&addr, WRITE, &req, Duration::from_secs(60))
        .await;
    for f in &followers {
        cluster.resume(f);
    }
    match answer {
        Err(RpcError::Remote(e)) => {
            assert_eq!(e.sqlstate.code(), "57P03", "{e:?}");
            assert!(e.retryable, "{e:?}");
            assert!(e.message.contains("may still be"), "{e:?}");
        }
        other => panic!("expected 57P03 from the leader, got {other:?}"),
    }
    // The group commits again once the followers are back (under the same leader or a new
    // one); whether the unanswered command made it is what the answer left open.
    let mut addr = addr;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match peers
            .call::<_, WriteReply>(&addr, WRITE, &req, Duration::from_secs(30))
            .await
        {
            Ok(_) => break,
            Err(e) if e.retryable() && std::time::Instant::now() < deadline => {
                if let RpcError::Remote(r) = &e {
                    addr = r.leader.clone().unwrap_or(addr);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the group does not commit again: {e}\n{}", cluster.logs()),
        }
    }
}

/// A data node restarted while its controller group cannot commit (both followers paused: the
/// leader answers reads, no write) waits for the group: it used to give up on recovering its
/// transactions after the 20-s write deadline and stay down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_node_restarted_while_the_controllers_cannot_commit_waits_for_them() {
    let mut cluster = TestCluster::builder().controllers(3).datanodes(1).build();
    let client = cluster.client(0).await;
    create_table(&client).await;
    client.batch_execute(&insert_rows(0, 10)).await.unwrap();
    drop(client);
    let dn = cluster.datanodes()[0].clone();
    let followers = cluster.followers();
    cluster.kill9(&dn);
    for f in &followers {
        cluster.pause(f);
    }
    let started = cluster.start_in_background(&dn);
    cluster.wait_until(
        "the data node to wait for its controllers past the write deadline",
        Duration::from_secs(90),
        || cluster.log(&dn).contains("waiting for it to recover"),
    );
    assert!(cluster.is_running(&dn), "{}", cluster.log(&dn));
    for f in &followers {
        cluster.resume(f);
    }
    cluster.wait_started(&dn, started);
    let client = cluster.client(0).await;
    assert_eq!(count(&client).await.unwrap(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_node_killed_mid_copy_leaves_the_copy_out_entirely() {
    let mut cluster = TestCluster::builder().controllers(1).datanodes(2).build();
    let client = cluster.client(0).await;
    create_table(&client).await;
    client.batch_execute(&insert_rows(0, 1000)).await.unwrap();
    let dn2 = cluster.datanodes()[1].clone();
    let sink = client
        .copy_in(&format!("copy {DB}.\"t\" from stdin"))
        .await
        .unwrap();
    futures::pin_mut!(sink);
    use futures::SinkExt;
    let chunk = |from: i64| -> bytes::Bytes {
        (from..from + 50_000)
            .map(|i| format!("{i}\t{}\t2\n", i % 10))
            .collect::<String>()
            .into()
    };
    sink.send(chunk(1000)).await.unwrap();
    cluster.kill9(&dn2);
    let mut from = 51_000;
    let mut result = Ok(0);
    for _ in 0..20 {
        if let Err(e) = sink.send(chunk(from)).await {
            result = Err(e);
            break;
        }
        from += 50_000;
    }
    if result.is_ok() {
        result = sink.finish().await;
    }
    let err = result.expect_err("a COPY whose participant died must fail");
    println!("COPY failed: {err}");

    // While the node is down, queries needing it fail with a clear error (not fewer rows).
    let client = cluster.client(0).await;
    let err = count(&client)
        .await
        .expect_err("a scan needs the down node");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "08006", "{db:?}");
    assert!(
        db.message().contains(&cluster.port(&dn2).to_string()),
        "the error names the node: {}",
        db.message()
    );

    cluster.start(&dn2);
    cluster.wait_until("the restarted node serves", Duration::from_secs(30), || {
        http_get(cluster.port(&dn2), "/metrics").0 == 200
    });
    assert_eq!(
        count(&client).await.unwrap(),
        1000,
        "the failed COPY left no rows"
    );
    assert_eq!(ids(&client).await.len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commit_point_decides_a_transaction_across_nodes() {
    let mut cluster = TestCluster::builder().controllers(1).datanodes(2).build();
    let (dn1, dn2) = (
        cluster.datanodes()[0].clone(),
        cluster.datanodes()[1].clone(),
    );
    let client = cluster.client(1).await;
    create_table(&client).await;
    client.batch_execute(&insert_rows(0, 100)).await.unwrap();

    // The coordinator dies right after the commit point, before anyone published: the
    // transaction is committed, so every row of it appears, on both nodes, exactly once.
    cluster.kill9(&dn1);
    cluster.start_with_env(&dn1, &[("PORPOISE_CRASH_AT", "txn-committed")]);
    let coordinator = cluster.client(0).await;
    let err = coordinator.batch_execute(&insert_rows(100, 200)).await;
    assert!(err.is_err(), "the coordinator crashed before answering");
    cluster.kill9(&dn1);
    cluster.start(&dn1);
    let client = cluster.client(1).await;
    wait_for_count(&client, 200).await;
    assert_eq!(ids(&client).await, (0..200).collect());

    // A participant dies after preparing, before answering: the coordinator cannot commit,
    // so none of the transaction's rows appear, on either node.
    let home = cluster.home().join(&dn2);
    let files_before: BTreeSet<String> = common::parquet_file_names(&home).into_iter().collect();
    cluster.kill9(&dn2);
    cluster.start_with_env(&dn2, &[("PORPOISE_CRASH_AT", "participant-prepared")]);
    let coordinator = cluster.client(0).await;
    let err = coordinator
        .batch_execute(&insert_rows(200, 300))
        .await
        .expect_err("a participant crashed while preparing");
    println!("refused: {err}");
    cluster.kill9(&dn2);
    cluster.start(&dn2);
    let client = cluster.client(1).await;
    assert_eq!(ids(&client).await, (0..200).collect());
    // Once the restarted participant settled, its prepared files are gone too.
    cluster.wait_until("aborted files removed", Duration::from_secs(30), || {
        let now: BTreeSet<String> = common::parquet_file_names(&home).into_iter().collect();
        now == files_before
    });
}

/// The controller dies on receiving an UPDATE's commit and stays down until the data node
/// gives up waiting: the data node cannot know whether the UPDATE committed. It settles that
/// with the controller once it is back (the UPDATE did not commit: it is aborted), so its
/// claim on the files it was replacing goes, and the next UPDATE of the same rows goes
/// through, with the data node never restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_left_unanswered_is_settled_by_the_running_coordinator() {
    let mut cluster = TestCluster::builder().controllers(1).datanodes(1).build();
    let ctl = cluster.controllers()[0].clone();
    let client = cluster.client(0).await;
    create_table(&client).await;
    client.batch_execute(&insert_rows(0, 100)).await.unwrap();

    cluster.kill9(&ctl);
    cluster.start_with_env(&ctl, &[("PORPOISE_CRASH_AT", "ctl-commit-received")]);
    let update = format!("update {DB}.\"t\" set v = -1 where k = 3");
    let err = client
        .batch_execute(&update)
        .await
        .expect_err("the controller died before committing");
    println!("in doubt: {err}");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::TRANSACTION_RESOLUTION_UNKNOWN),
        "{err:?}"
    );
    assert!(
        !cluster.is_running(&ctl),
        "the controller crashed on the commit"
    );
    cluster.kill9(&ctl); // reaps it
    cluster.start(&ctl);

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match client.batch_execute(&update).await {
            Ok(()) => break,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the UPDATE in doubt still blocks the same rows: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let row = client
        .query_one(
            &format!("select count(*), count(*) filter (where v = -1) from {DB}.\"t\""),
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (100, 10));
}

/// One reader's view of the table: row count, and the smallest and largest `v - id` (every row
/// of a consistent state has the same one: see the test below).
async fn view(client: &tokio_postgres::Client) -> (i64, f64, f64) {
    let row = client
        .query_one(
            &format!("select count(*), min(v - id), max(v - id) from {DB}.\"t\""),
            &[],
        )
        .await
        .expect("read the table");
    (
        row.get(0),
        row.get::<_, Option<f64>>(1).unwrap_or(0.5),
        row.get::<_, Option<f64>>(2).unwrap_or(0.5),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_sees_a_transaction_on_every_node_or_on_none() {
    // Coordinators wait 300 ms between publishing their own part of a committed transaction
    // and telling the other node to publish its part: a query in that window must still see
    // all of the transaction or none of it, on both nodes.
    let cluster = TestCluster::builder()
        .controllers(1)
        .datanodes(2)
        .env("PORPOISE_DELAY_AT", "txn-published-locally:300")
        .build();
    let writer = cluster.client(0).await;
    create_table(&writer).await;
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for i in 0..2 {
        let client = cluster.client(i).await;
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            let mut reads = 0u32;
            while !done.load(Ordering::Acquire) {
                let (n, lo, hi) = view(&client).await;
                assert_eq!(n % 100, 0, "node {i} saw part of an INSERT: {n} rows");
                assert_eq!(
                    lo, hi,
                    "node {i} saw part of an UPDATE: v - id in {lo}..{hi}"
                );
                reads += 1;
            }
            reads
        }));
    }
    // Each INSERT adds 100 rows spread over both nodes, with v = id + 0.5 + (UPDATEs so far);
    // each UPDATE adds 1 to every v. So in every committed state all rows share one v - id.
    for round in 0..8i64 {
        // `round` UPDATEs so far.
        let values: Vec<String> = (round * 100..round * 100 + 100)
            .map(|i| format!("({i}, {}, {})", i % 10, i as f64 + 0.5 + round as f64))
            .collect();
        writer
            .batch_execute(&format!(
                "insert into {DB}.\"t\" values {}",
                values.join(",")
            ))
            .await
            .unwrap();
        writer
            .batch_execute(&format!("update {DB}.\"t\" set v = v + 1"))
            .await
            .unwrap();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        let reads = r.await.expect("a reader saw a partial transaction");
        assert!(reads > 10, "readers ran during the writes ({reads} reads)");
    }
    let files = parquet_files_by_node(&cluster);
    assert!(
        files.values().all(|n| *n > 0),
        "the transactions spanned both nodes: {files:?}"
    );
    let client = cluster.client(1).await;
    assert_eq!(view(&client).await, (800, 8.5, 8.5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_through_two_nodes_neither_lose_nor_duplicate_rows() {
    let cluster = TestCluster::builder().controllers(1).datanodes(2).build();
    let client = cluster.client(0).await;
    create_table(&client).await;
    client.batch_execute(&insert_rows(0, 1000)).await.unwrap();
    // Two statements replacing the same files on both nodes at once: each must apply to the
    // rows as the other left them (or fail with 40001 and be retried), never to a stale copy.
    let mut writers = Vec::new();
    for i in 0..2 {
        let client = cluster.client(i).await;
        writers.push(tokio::spawn(async move {
            let mut refused = 0;
            for _ in 0..6 {
                loop {
                    match client
                        .batch_execute(&format!("update {DB}.\"t\" set v = v + 1"))
                        .await
                    {
                        Ok(()) => break,
                        Err(e)
                            if e.code()
                                == Some(
                                    &tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE,
                                ) =>
                        {
                            refused += 1;
                            assert!(refused < 100, "node {i}: refused 100 times: {e}");
                        }
                        Err(e) => panic!("node {i}: {e}"),
                    }
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for w in writers {
        refused += w.await.expect("a writer failed");
    }
    println!("serialization failures retried: {refused}");
    for i in 0..2 {
        let client = cluster.client(i).await;
        assert_eq!(view(&client).await, (1000, 12.5, 12.5), "through node {i}");
        assert_eq!(ids(&client).await.len(), 1000);
    }
}

/// Polls `count(*)` until it is `want` (a participant publishes a committed transaction on
/// its own within a few seconds).
async fn wait_for_count(client: &tokio_postgres::Client, want: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n = count(client).await.unwrap_or(-1);
        if n == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "count(*) is {n}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_restart_keeps_everything_acknowledged() {
    let mut cluster = TestCluster::builder().controllers(3).datanodes(2).build();
    let client = cluster.client(0).await;
    create_table(&client).await;
    client
        .batch_execute(&format!(
            "create table {DB}.\"dim\"(a INT, b STRING);
             insert into {DB}.\"dim\" values (1, 'one'), (2, 'two');"
        ))
        .await
        .unwrap();
    for i in 0..10 {
        client
            .batch_execute(&insert_rows(i * 100, i * 100 + 100))
            .await
            .unwrap();
    }
    let aliases: Vec<String> = cluster.nodes.iter().map(|n| n.alias.clone()).collect();
    for a in &aliases {
        cluster.kill9(a);
    }
    // Controllers first, as `porpoise up` does; data nodes wait for a leader either way.
    for a in &aliases {
        cluster.start(a);
    }
    let client = cluster.client(1).await;
    assert_eq!(ids(&client).await, (0..1000).collect());
    let rows = client
        .query(&format!("select b from {DB}.\"dim\" order by a"), &[])
        .await
        .unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, vec!["one", "two"]);
    client
        .batch_execute(&insert_rows(1000, 1010))
        .await
        .unwrap();
    assert_eq!(count(&client).await.unwrap(), 1010);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn porpoise_up_starts_every_node_and_stops_them_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    let ports: Vec<u16> = (0..3).map(|_| common::cluster::free_port()).collect();
    std::fs::write(
        cfg.join("cluster.nodes"),
        format!(
            "localSite,mode\n127.0.0.1:{}:up_ctl,controller\n127.0.0.1:{}:up_dn1,datanode\n127.0.0.1:{}:up_dn2,datanode\n",
            ports[0], ports[1], ports[2]
        ),
    )
    .unwrap();
    std::fs::write(cfg.join("controller.cfg"), "mode=controller\n").unwrap();
    std::fs::write(cfg.join("cluster.cfg"), "newValuePartitionPolicy=add\n").unwrap();
    let mut up = spawn_up(&cfg, &dir.path().join("home"));
    let url = common::url(ports[2], "admin", "123456");
    let client = wait_serving(&url).await;
    create_table(&client).await;
    client.batch_execute(&insert_rows(0, 50)).await.unwrap();
    let other = common::connect(&common::url(ports[1], "admin", "123456"))
        .await
        .unwrap();
    assert_eq!(count(&other).await.unwrap(), 50);
    // SIGTERM to `up` stops every node it started.
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(up.id().to_string())
        .status()
        .unwrap();
    let status = up.wait().unwrap();
    assert!(status.success(), "porpoise up exits cleanly: {status}");
    for p in &ports {
        assert_eq!(http_get(*p, "/metrics").0, 0, "port {p} still answers");
    }

    // Even `kill -9` of `up` stops its nodes (their standard input closes), and the data is
    // there when it starts again.
    let mut up = spawn_up(&cfg, &dir.path().join("home"));
    let client = wait_serving(&url).await;
    assert_eq!(count(&client).await.unwrap(), 50);
    up.kill().unwrap();
    up.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ports.iter().any(|p| http_get(*p, "/metrics").0 != 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "nodes outlived a killed porpoise up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_node_port_gets_errors_and_hurts_nobody() {
    use arrow_flight::flight_service_client::FlightServiceClient;
    let cluster = TestCluster::builder().controllers(1).datanodes(1).build();
    let client = cluster.client(0).await;
    create_table(&client).await;
    for alias in [
        cluster.controllers()[0].clone(),
        cluster.datanodes()[0].clone(),
    ] {
        let port = cluster.port(&alias);
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut flight = FlightServiceClient::new(channel);
        for call in [
            "ctl.write",
            "ctl.watch",
            "raft.append",
            "dn.prepare",
            "q.rewrite",
            "nosuch",
        ] {
            let action = arrow_flight::Action {
                r#type: call.to_string(),
                body: bytes::Bytes::from_static(b"\x00\xffnot json"),
            };
            // Either the call is refused, or it answers an error in its body: never a crash.
            if let Ok(answer) = flight.do_action(action).await {
                let mut stream = answer.into_inner();
                let body = stream.message().await.unwrap().unwrap().body;
                let text = String::from_utf8_lossy(&body);
                assert!(text.contains("\"Err\""), "{alias} {call}: {text}");
            }
        }
        let ticket = arrow_flight::Ticket {
            ticket: bytes::Bytes::from_static(b"{\"v\":1,\"body\":42}"),
        };
        if let Ok(r) = flight.do_get(ticket).await {
            let mut stream = r.into_inner();
            assert!(stream.message().await.is_err(), "a bad ticket is an error");
        }
        // HTTP garbage.
        let (code, _) = http_get(port, "/nosuch");
        assert_eq!(code, 404);
    }
    // Everything still works.
    client.batch_execute(&insert_rows(0, 10)).await.unwrap();
    assert_eq!(count(&client).await.unwrap(), 10);
}

#[test]
fn a_node_with_an_unknown_alias_refuses_to_start() {
    let cluster = TestCluster::builder().controllers(1).datanodes(1).build();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_porpoise"))
        .arg("datanode")
        .arg(cluster.config_dir())
        .args(["--alias", "nosuch", "--home"])
        .arg(cluster.home())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cluster.nodes has no datanode named nosuch"),
        "{err}"
    );
}

/// `porpoise up` of a cluster directory, its output discarded.
fn spawn_up(cfg: &std::path::Path, home: &std::path::Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_porpoise"))
        .arg("up")
        .arg(cfg)
        .arg("--home")
        .arg(home)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A client of `url` once the node there answers queries (with a deadline).
async fn wait_serving(url: &str) -> tokio_postgres::Client {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(c) = common::connect(url).await {
            if c.simple_query("select 1").await.is_ok() {
                return c;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "porpoise up did not serve {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
