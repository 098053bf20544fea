//! Slave clusters prove who they are: a master admits a slave only if the slave's node
//! certificates chain to a CA of its `clusterReplicationSlaveCAFile`, and a slave pulls only
//! from a master whose nodes chain to `clusterReplicationSSLCAFile`.

use std::time::Duration;

use super::common::cluster::TestCluster;
use super::{content, master_builder, slave_builder, wait_for_content, wait_for_role};
use super::{TESTDB, TWO_ROWS};

/// Waits until `alias`'s log says `what`.
fn wait_for_log(cluster: &TestCluster, alias: &str, what: &str) {
    cluster.wait_until(
        &format!("{alias} to log {what:?}"),
        Duration::from_secs(60),
        || cluster.log(alias).contains(what),
    );
}

/// The slave's `pullError` (why its pulls fail), once it is recorded.
async fn pull_error(slave: &tokio_postgres::Client) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let row = slave
            .query_one("select pullError from getClusterReplicationMetrics()", &[])
            .await
            .unwrap();
        if let Some(e) = row.get::<_, Option<String>>(0) {
            return e;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slave never recorded why its pulls fail"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// psql's `\conninfo` on the `i`-th data node of `cluster` with `sslmode` (and the CA of
/// `root` for the verifying modes).
fn conninfo(cluster: &TestCluster, i: usize, sslmode: &str, root: &TestCluster) -> (bool, String) {
    let port = cluster.port(&cluster.datanodes()[i]);
    let out = std::process::Command::new("psql")
        .arg(format!(
            "postgresql://admin:123456@127.0.0.1:{port}/postgres?sslmode={sslmode}"
        ))
        .env("PGSSLROOTCERT", root.ca_cert())
        .args(["-X", "-c", "\\conninfo"])
        .output()
        .expect("run psql");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_slave_replicates_and_an_untrusted_one_gets_nothing() {
    let master = master_builder(false)
        .controller_cfg("clusterReplicationSlaveNum", "1")
        .build();
    let trusted = slave_builder(&master).datanodes(1).build();
    // Knows the master's CA, but the master was not told of its own.
    let untrusted = slave_builder(&master)
        .prefix("u")
        .datanodes(1)
        .untrusted()
        .build();

    let m = master.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(&[TESTDB, TWO_ROWS].concat()).await.unwrap();
    let want = content(&m).await.unwrap();
    assert_eq!(want.len(), 2);

    // The trusted slave replays everything: pulls, task data and files over mutual TLS.
    let s = trusted.client(0).await;
    wait_for_content(&s, &want).await;

    // The untrusted one is told why it gets nothing, naming the certificate it presented.
    let ctl = &untrusted.controllers()[0];
    wait_for_log(&untrusted, ctl, "is not one of them");
    assert!(
        untrusted
            .log(ctl)
            .contains(&format!("node {ctl} of cluster")),
        "{}",
        untrusted.log(ctl)
    );
    // ... and in SQL on its own side.
    let u = untrusted.client(0).await;
    let why = pull_error(&u).await;
    assert!(
        why.contains("is not one of them") && why.contains("28000"),
        "{why}"
    );
    let tasks = u
        .query("select * from getSlaveReplicationStatus()", &[])
        .await
        .unwrap();
    assert!(
        tasks.is_empty(),
        "the untrusted slave pulled {} tasks",
        tasks.len()
    );
    // The master lists the trusted slave only, under the id its certificate carries.
    let attached: Vec<(String, String)> = m
        .query("select * from getRecentSlaveReplicationInfo()", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("connectedController"), r.get("slaveClusterId")))
        .collect();
    let trusted_ctl = format!("127.0.0.1:{}", trusted.port(&trusted.controllers()[0]));
    let trusted_id =
        porpoise::rpc::identity::NodeIdentity::load(&trusted.certs_dir(&trusted.controllers()[0]))
            .unwrap()
            .cluster;
    assert_eq!(attached, vec![(trusted_ctl, trusted_id)]);
    let fine: Option<String> = s
        .query_one("select pullError from getClusterReplicationMetrics()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(fine, None);

    // A second trusted slave beyond clusterReplicationSlaveNum (1) is told so in SQL.
    let extra = slave_builder(&master).prefix("x").datanodes(1).build();
    let x = extra.client(0).await;
    let why = pull_error(&x).await;
    assert!(why.contains("clusterReplicationSlaveNum"), "{why}");

    // psql verifies a data node against its cluster's CA, and not against another's.
    let (ok, info) = conninfo(&master, 0, "verify-full", &master);
    assert!(ok && info.contains("SSL connection"), "{info}");
    let (ok, info) = conninfo(&master, 0, "verify-full", &trusted);
    assert!(!ok && info.contains("certificate verify failed"), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slave_does_not_pull_from_a_master_it_cannot_verify() {
    let master = master_builder(false).datanodes(1).build();
    // Another cluster's CA in place of the master's.
    let other = TestCluster::builder().prefix("o").datanodes(1).build();
    let slave = slave_builder(&master)
        .datanodes(1)
        .controller_cfg(
            "clusterReplicationSSLCAFile",
            other.ca_cert().to_str().unwrap(),
        )
        .build();
    let m = master.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(&[TESTDB, TWO_ROWS].concat()).await.unwrap();

    let ctl = &slave.controllers()[0];
    wait_for_log(&slave, ctl, "TLS handshake with");
    assert!(
        slave
            .log(ctl)
            .contains("invalid peer certificate: UnknownIssuer"),
        "{}",
        slave.log(ctl)
    );
    let s = slave.client(0).await;
    let why = pull_error(&s).await;
    assert!(why.contains("UnknownIssuer"), "{why}");
    assert!(s
        .query("select * from getSlaveReplicationStatus()", &[])
        .await
        .unwrap()
        .is_empty());
    assert!(m
        .query("select * from getRecentSlaveReplicationInfo()", &[])
        .await
        .unwrap()
        .is_empty());
}
