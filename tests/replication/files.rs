//! A slave takes an APPEND as the master's own Parquet files when it can, and as rows from
//! the master's task data when it cannot.

use super::*;

/// The sum over the slave's data nodes of a counter on `/metrics`.
fn received(slave: &TestCluster, counter: &str) -> u64 {
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

/// The data files of `dir` and below, by name: their bytes.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_arrives_as_the_masters_files_or_else_as_rows() {
    let master = master(true);
    let slave = slave_of(&master);
    let m = master.client(0).await;
    let s = slave.client(1).await;
    wait_for_role(&m).await;
    m.batch_execute(TESTDB).await.unwrap();

    // 28 partitions, spread over both data nodes of each cluster: every slave data node takes
    // files from both master data nodes.
    let values: Vec<String> = (0..3000)
        .map(|i| format!("(date '2023-02-{:02}', {i}, {i}.5)", i % 28 + 1))
        .collect();
    m.batch_execute(&format!(
        r#"insert into "dfs://testDB"."testTB" values {}"#,
        values.join(",")
    ))
    .await
    .unwrap();
    let want = content(&m).await.unwrap();
    wait_for_content(&s, &want).await;
    assert_eq!(
        received(&slave, "porpoise_replication_files_received_total"),
        28
    );
    assert_eq!(
        received(&slave, "porpoise_replication_rows_received_total"),
        0
    );
    // Byte for byte the master's files.
    let files = |c: &TestCluster| {
        let mut all: Vec<Vec<u8>> = c
            .datanodes()
            .iter()
            .flat_map(|dn| parquet_files(&c.home().join(dn)))
            .collect();
        all.sort();
        all
    };
    let on_master = files(&master);
    assert_eq!(on_master.len(), 28);
    assert_eq!(files(&slave), on_master);
    let bytes: usize = on_master.iter().map(Vec::len).sum();
    assert_eq!(
        received(&slave, "porpoise_replication_file_bytes_received_total"),
        bytes as u64
    );

    // A master data node holding files of the next APPEND is down when the slave applies
    // it: the rows come from the task data on the coordinator instead.
    s.batch_execute("select stopClusterReplication()")
        .await
        .unwrap();
    let values: Vec<String> = (0..1000)
        .map(|i| format!("(date '2023-03-{:02}', {}, 0.5)", i % 28 + 1, 10_000 + i))
        .collect();
    m.batch_execute(&format!(
        r#"insert into "dfs://testDB"."testTB" values {}"#,
        values.join(",")
    ))
    .await
    .unwrap();
    let want = content(&m).await.unwrap();
    let mut master = master;
    let holder = master.datanodes()[1].clone();
    master.kill9(&holder);
    s.batch_execute("select startClusterReplication()")
        .await
        .unwrap();
    wait_for_content(&s, &want).await;
    assert_eq!(
        received(&slave, "porpoise_replication_rows_received_total"),
        1000
    );
    assert_eq!(
        received(&slave, "porpoise_replication_files_received_total"),
        28
    );

    // Back up, it serves its files again.
    master.start(&holder);
    wait_for("an insert once the data node is back", || async {
        m.batch_execute(r#"insert into "dfs://testDB"."testTB" values (date '2023-03-01', 20000, 3.75), (date '2023-03-02', 20001, 3.75)"#)
            .await
            .is_ok()
    })
    .await;
    let want = content(&m).await.unwrap();
    wait_for_content(&s, &want).await;
    assert_eq!(
        received(&slave, "porpoise_replication_files_received_total"),
        30
    );
    assert_eq!(
        received(&slave, "porpoise_replication_rows_received_total"),
        1000
    );
}
