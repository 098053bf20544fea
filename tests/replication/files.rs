//! A slave takes an APPEND as the master's own Parquet files when it can, and as rows from
//! the master's task data when it cannot or when the files are small.

use super::*;

/// The sum over the slave's data nodes of a counter on `/metrics`.
pub(super) fn received(slave: &TestCluster, counter: &str) -> u64 {
    slave
        .datanodes()
        .iter()
        .map(|dn| {
            let (code, body) = slave.http_get(dn, "/metrics");
            assert_eq!(code, 200, "{dn}: /metrics");
            body.lines()
                .find(|l| l.starts_with(&format!("{counter}{{")))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{dn} has no {counter}:\n{body}"))
        })
        .sum()
}

/// The bytes of every data file under `dir`.
fn parquet_files(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(parquet_files(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(std::fs::read(&path).expect("read a data file"));
        }
    }
    out
}

/// The data files of a cluster's data nodes, sorted.
fn cluster_files(c: &TestCluster) -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = c
        .datanodes()
        .iter()
        .flat_map(|dn| parquet_files(&c.home().join(dn)))
        .collect();
    all.sort();
    all
}

/// COPYs `per_day` rows into each of `days` (`2023-MM-DD`), ids from `first_id`.
pub(super) async fn copy_days(
    m: &tokio_postgres::Client,
    days: &[&str],
    per_day: i64,
    first_id: i64,
) {
    use futures::SinkExt;
    let mut data = String::new();
    let mut id = first_id;
    for day in days {
        for _ in 0..per_day {
            data.push_str(&format!("{day}\t{id}\t{id}.25\n"));
            id += 1;
        }
    }
    let sink = m
        .copy_in(r#"copy "dfs://testDB"."testTB" from stdin"#)
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(data)).await.unwrap();
    sink.finish().await.unwrap();
}

const FILES: &str = "porpoise_replication_files_received_total";
const ROWS: &str = "porpoise_replication_rows_received_total";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_arrives_as_the_masters_files_or_else_as_rows() {
    let mut master = master(true);
    let slave = slave_of(&master);
    let m = master.client(0).await;
    let s = slave.client(1).await;
    wait_for_role(&m).await;
    m.batch_execute(TESTDB).await.unwrap();

    // Eight partitions of 8,192 rows, spread over both data nodes of each cluster: every
    // slave data node takes files from both master data nodes.
    let february: Vec<String> = (1..=8).map(|d| format!("2023-02-{d:02}")).collect();
    let february: Vec<&str> = february.iter().map(String::as_str).collect();
    copy_days(&m, &february, 8192, 0).await;
    let want = content(&m).await.unwrap();
    wait_for_content(&s, &want).await;
    assert_eq!(received(&slave, FILES), 8);
    assert_eq!(received(&slave, ROWS), 0);
    // Byte for byte the master's files.
    let on_master = cluster_files(&master);
    assert_eq!(on_master.len(), 8);
    assert_eq!(cluster_files(&slave), on_master);
    let bytes: usize = on_master.iter().map(Vec::len).sum();
    assert_eq!(
        received(&slave, "porpoise_replication_file_bytes_received_total"),
        bytes as u64
    );

    // A small APPEND comes as rows: its file is not worth a fetch and an fsync of its own.
    m.batch_execute(r#"insert into "dfs://testDB"."testTB" values (date '2023-02-09', 100000, 1.5), (date '2023-02-10', 100001, 2.5)"#)
        .await
        .unwrap();
    let want = content(&m).await.unwrap();
    wait_for_content(&s, &want).await;
    assert_eq!(received(&slave, ROWS), 2);
    assert_eq!(received(&slave, FILES), 8);

    // A master data node holding files of the next APPEND is down when the slave applies
    // it: the rows come from the task data on the coordinator instead.
    s.batch_execute("select stopClusterReplication()")
        .await
        .unwrap();
    let march: Vec<String> = (1..=8).map(|d| format!("2023-03-{d:02}")).collect();
    let march: Vec<&str> = march.iter().map(String::as_str).collect();
    copy_days(&m, &march, 8192, 200_000).await;
    let want = content(&m).await.unwrap();
    let holder = master.datanodes()[1].clone();
    master.kill9(&holder);
    s.batch_execute("select startClusterReplication()")
        .await
        .unwrap();
    wait_for_content(&s, &want).await;
    assert_eq!(received(&slave, ROWS), 2 + 8 * 8192);
    assert_eq!(received(&slave, FILES), 8);

    // Back up, it serves its files again.
    master.start(&holder);
    wait_for("the master data node back", || async {
        master.http_get(&holder, "/metrics").0 == 200
    })
    .await;
    copy_days(&m, &["2023-04-01", "2023-04-02"], 8192, 300_000).await;
    let want = content(&m).await.unwrap();
    wait_for_content(&s, &want).await;
    assert_eq!(received(&slave, FILES), 10);
    assert_eq!(received(&slave, ROWS), 2 + 8 * 8192);
}
