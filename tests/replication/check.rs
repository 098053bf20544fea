//! `checkClusterReplicationConsistency`: the slave compared with the master at one point,
//! partition by partition, while writes go on; and the differences it finds.

use std::time::{Duration, Instant};

use super::common::wait_for;
use super::files::copy_days;
use super::{content, master, slave_builder, wait_for_content, wait_for_role, TESTDB};

/// One row of the check: table, partition, master rows, slave rows, status, diverged.
type Row = (String, String, Option<i64>, Option<i64>, String, bool);

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
            r.get("diverged"),
        )
    })
    .collect())
}

/// `repairClusterReplication` with `args` after the database: (table, partition, reason).
async fn repair(
    s: &tokio_postgres::Client,
    args: &str,
) -> Result<Vec<(String, Option<String>, String)>, tokio_postgres::Error> {
    let sql = format!("select * from repairClusterReplication('dfs://testDB'{args}) order by 1, 2");
    Ok(s.query(&sql, &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Waits until the repair of testDB is installed.
async fn wait_for_repair(s: &tokio_postgres::Client) {
    wait_for("the repair to be installed", || async {
        s.query(
            "select 1 from getClusterReplicationSeedStatus() where dbName = 'dfs://testDB' and kind = 'REPAIR' and state = 'DONE'",
            &[],
        )
        .await
        .is_ok_and(|r| r.len() == 1)
    })
    .await;
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

    // The data files of one partition lost on the slave's disk: it is missing there. (The
    // slave's compaction of the single-row inserts above may publish a merged file after the
    // files were listed: whatever appears is removed too, until the check sees the loss.)
    let files = |day: &str| -> Vec<std::path::PathBuf> {
        slave
            .datanodes()
            .iter()
            .flat_map(|dn| parquet_paths(&slave.home().join(dn).join("data")))
            .filter(|p| p.to_string_lossy().contains(day))
            .collect()
    };
    assert!(
        !files("20230102").is_empty(),
        "the slave has files of 2023.01.02"
    );
    wait_for("the check to find the lost files", || async {
        for f in files("20230102") {
            let _ = std::fs::remove_file(&f);
        }
        check(&s).await.is_ok_and(|rows| {
            rows.iter()
                .any(|r| r.1 == "20230102" && r.4 == "MISSING_ON_SLAVE")
        })
    })
    .await;
    let rows = check(&s).await.unwrap();
    let statuses: Vec<(&str, &str, bool)> = rows
        .iter()
        .map(|r| (r.1.as_str(), r.4.as_str(), r.5))
        .collect();
    assert_eq!(
        statuses,
        [
            ("20230101", "MATCH", false),
            ("20230102", "MISSING_ON_SLAVE", false),
            ("20230103", "MATCH", false),
            ("20230104", "MISSING_ON_SLAVE", true)
        ],
        "{rows:?}"
    );

    // Repair replaces what differs and what the skipped task left diverged, from a new cut,
    // while the master writes on; the execution user needs WRITE again for it.
    s.batch_execute("grant write on all databases to repl")
        .await
        .unwrap();
    let (code, message) = match repair(&s, ", 'nosuch'").await {
        Err(e) => {
            let e = e.as_db_error().unwrap();
            (e.code().code().to_string(), e.message().to_string())
        }
        Ok(rows) => panic!("a table that does not exist was repaired: {rows:?}"),
    };
    assert_eq!(code, "42P01", "{message}");
    let asked = repair(&s, "").await.unwrap();
    let part = |p: &str| Some(p.to_string());
    assert_eq!(
        asked,
        [
            (
                "testTB".to_string(),
                part("20230102"),
                "MISSING_ON_SLAVE".to_string()
            ),
            (
                "testTB".to_string(),
                part("20230104"),
                "DIVERGED".to_string()
            ),
        ]
    );
    m.batch_execute(r#"insert into "dfs://testDB"."testTB" values (date '2023-01-01', 7, 7)"#)
        .await
        .unwrap();
    wait_for_repair(&s).await;
    wait_for_content(&s, &content(&m).await.unwrap()).await;
    let rows = check(&s).await.unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r.4 == "MATCH" && !r.5), "{rows:?}");
    // Nothing differs now: a repair asks for nothing.
    assert_eq!(repair(&s, "").await.unwrap(), []);

    // A partition named by hand is replaced the same way (its files lost again first), and
    // only it is copied.
    wait_for("the check to find the lost files", || async {
        for f in files("20230103") {
            let _ = std::fs::remove_file(&f);
        }
        check(&s).await.is_ok_and(|rows| {
            rows.iter()
                .any(|r| r.1 == "20230103" && r.4 == "MISSING_ON_SLAVE")
        })
    })
    .await;
    assert_eq!(
        repair(&s, ", ['testTB/20230103']").await.unwrap(),
        [(
            "testTB".to_string(),
            part("20230103"),
            "REQUESTED".to_string()
        )]
    );
    wait_for("the second repair to be installed", || async {
        check(&s)
            .await
            .is_ok_and(|rows| rows.len() == 4 && rows.iter().all(|r| r.4 == "MATCH"))
    })
    .await;
    wait_for_repair(&s).await;
    let done: (i64, i64, i64) = s
        .query_one(
            "select partitionsDone, partitionsTotal, tablesTotal from getClusterReplicationSeedStatus() where dbName = 'dfs://testDB'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .unwrap();
    assert_eq!(done, (1, 1, 1), "only the partition named was copied");
    wait_for_content(&s, &content(&m).await.unwrap()).await;
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
