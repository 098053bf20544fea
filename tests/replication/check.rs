//! `checkClusterReplicationConsistency`: the slave compared with the master at one point,
//! partition by partition, while writes go on; and the differences it finds.

use std::time::{Duration, Instant};

use super::common::wait_for;
use super::files::copy_days;
use super::{content, master, slave_builder, wait_for_content, wait_for_role, TESTDB};

/// One row of the check: table, partition, master rows, slave rows, status.
type Row = (String, String, Option<i64>, Option<i64>, String);

async fn check(s: &tokio_postgres::Client) -> Result<Vec<Row>, tokio_postgres::Error> {
    Ok(s.query(
        "select * from checkClusterReplicationConsistency('dfs://testDB')",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        (
            r.get("tableName"),
            r.get("partition"),
            r.get("masterRows"),
            r.get("slaveRows"),
            r.get("status"),
        )
    })
    .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_matches_while_writes_go_on_and_finds_a_skipped_task_and_a_lost_file() {
    let master = master(true);
    // The slave replays as `repl`, whose WRITE privilege is taken away later.
    let slave = slave_builder(&master)
        .cluster_cfg("clusterReplicationExecutionUsername", "repl")
        .cluster_cfg("clusterReplicationExecutionPassword", "repl_pw")
        .build();
    let s = slave.client(0).await;
    s.batch_execute(
        r#"create user repl with password 'repl_pw';
           grant ddl on all databases to repl;
           grant write on all databases to repl;"#,
    )
    .await
    .unwrap();
    let m = master.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(TESTDB).await.unwrap();
    copy_days(&m, &["2023-01-01", "2023-01-02", "2023-01-03"], 5_000, 1).await;
    wait_for_content(&s, &content(&m).await.unwrap()).await;

    // Equal, partition by partition, also while the master goes on writing.
    let writer = {
        let url = master.url(1);
        tokio::spawn(async move {
            let c = super::common::connect(&url).await.unwrap();
            for id in 100_000..100_100 {
                c.batch_execute(&format!(
                    r#"insert into "dfs://testDB"."testTB" values (date '2023-01-0{}', {id}, 0.5)"#,
                    1 + id % 3
                ))
                .await
                .unwrap();
            }
        })
    };
    let mut checks = 0;
    while !writer.is_finished() || checks == 0 {
        let rows = check(&s).await.unwrap();
        assert_eq!(rows.len(), 3, "{rows:?}");
        for r in &rows {
            assert_eq!(r.4, "MATCH", "{rows:?}");
            assert_eq!(r.2, r.3);
            assert!(r.2 >= Some(5_000));
        }
        checks += 1;
    }
    writer.await.unwrap();

    // A task skipped on the slave: its partition is missing there.
    s.batch_execute("revoke write on all databases from repl")
        .await
        .unwrap();
    m.batch_execute(r#"insert into "dfs://testDB"."testTB" values (date '2023-01-04', 1, 1)"#)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed: i64 = loop {
        let r = s
            .query(
                "select taskId from getSlaveReplicationStatus() where state = 'FAILED'",
                &[],
            )
            .await
            .unwrap();
        if let Some(row) = r.first() {
            break row.get(0);
        }
        assert!(Instant::now() < deadline, "the APPEND never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    s.batch_execute(&format!(
        "select stopClusterReplication(); select skipClusterReplicationTask({failed}); select startClusterReplication();"
    ))
    .await
    .unwrap();
    wait_for("the check to find the skipped task's partition", || async {
        check(&s).await.is_ok_and(|rows| {
            rows.iter()
                .any(|r| r.4 == "MISSING_ON_SLAVE" && r.2 == Some(1) && r.3.is_none())
                && rows.iter().filter(|r| r.4 == "MATCH").count() == 3
        })
    })
    .await;

    // The data files of one partition lost on the slave's disk: it is missing there.
    let lost: Vec<_> = slave
        .datanodes()
        .iter()
        .flat_map(|dn| parquet_paths(&slave.home().join(dn).join("data")))
        .filter(|p| p.to_string_lossy().contains("20230102"))
        .collect();
    assert!(!lost.is_empty(), "the slave has files of 2023.01.02");
    for f in lost {
        std::fs::remove_file(&f).unwrap();
    }
    let rows = check(&s).await.unwrap();
    let statuses: Vec<(&str, &str)> = rows.iter().map(|r| (r.1.as_str(), r.4.as_str())).collect();
    assert_eq!(
        statuses,
        [
            ("20230101", "MATCH"),
            ("20230102", "MISSING_ON_SLAVE"),
            ("20230103", "MATCH"),
            ("20230104", "MISSING_ON_SLAVE")
        ],
        "{rows:?}"
    );
}

/// The Parquet files under `dir`.
fn parquet_paths(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(parquet_paths(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out.sort();
    out
}
