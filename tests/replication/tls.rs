//! `enableClusterReplicationSSL`: a master that sets it serves TLS and takes the calls of
//! slaves only over TLS; a slave that sets it reaches the master over TLS, verifying the
//! master's certificates when `clusterReplicationSSLCAFile` names them.

use std::path::PathBuf;
use std::time::Duration;

use super::common::cluster::{TestCluster, TestClusterBuilder};
use super::{content, master_builder, slave_builder, wait_for_content, wait_for_role};
use super::{TESTDB, TWO_ROWS};

/// Sets the TLS key on the controllers and the data nodes.
fn with_replication_ssl(builder: TestClusterBuilder) -> TestClusterBuilder {
    builder
        .controller_cfg("enableClusterReplicationSSL", "true")
        .cluster_cfg("enableClusterReplicationSSL", "true")
}

/// Sets the certificates a slave verifies the master's nodes against.
fn trusting(builder: TestClusterBuilder, ca_file: &std::path::Path) -> TestClusterBuilder {
    let ca = ca_file.to_str().expect("a UTF-8 path");
    builder
        .controller_cfg("clusterReplicationSSLCAFile", ca)
        .cluster_cfg("clusterReplicationSSLCAFile", ca)
}

/// Writes the certificates the nodes `aliases` of `cluster` made for themselves into one file.
fn certificates(cluster: &TestCluster, aliases: &[String], name: &str) -> PathBuf {
    let pem: String = aliases
        .iter()
        .map(|a| {
            let path = cluster.home().join(a).join("keys").join("server.crt");
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{a} made no certificate at {}: {e}", path.display()))
        })
        .collect();
    let path = cluster.home().join(name);
    std::fs::write(&path, pem).expect("write the CA file");
    path
}

/// Waits until `alias`'s log says `what`.
fn wait_for_log(cluster: &TestCluster, alias: &str, what: &str) {
    cluster.wait_until(
        &format!("{alias} to log {what:?}"),
        Duration::from_secs(60),
        || cluster.log(alias).contains(what),
    );
}

/// psql's `\conninfo` on the `i`-th data node of `cluster` with `sslmode`.
fn conninfo(cluster: &TestCluster, i: usize, sslmode: &str) -> (bool, String) {
    let port = cluster.port(&cluster.datanodes()[i]);
    let out = std::process::Command::new("psql")
        .arg(format!(
            "postgresql://admin:123456@127.0.0.1:{port}/postgres?sslmode={sslmode}"
        ))
        .args(["-X", "-c", "\\conninfo"])
        .output()
        .expect("run psql");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_with_replication_ssl_serves_slaves_over_tls_only() {
    let master = with_replication_ssl(master_builder(false)).build();
    let mut aliases = master.controllers();
    aliases.extend(master.datanodes());
    let ca = certificates(&master, &aliases, "master-certificates.pem");

    // A slave that verifies every master node against the certificates they made, and one
    // that does not use TLS.
    let secure = trusting(
        with_replication_ssl(slave_builder(&master).datanodes(1)),
        &ca,
    )
    .build();
    let plain = slave_builder(&master).prefix("p").datanodes(1).build();

    let m = master.client(0).await;
    wait_for_role(&m).await;
    m.batch_execute(&[TESTDB, TWO_ROWS].concat()).await.unwrap();
    let want = content(&m).await.unwrap();
    assert_eq!(want.len(), 2);

    // The secure slave replays everything: pulls, task data and files went over TLS.
    let s = secure.client(0).await;
    wait_for_content(&s, &want).await;

    // The plain slave is told why it gets nothing.
    let plain_ctl = &plain.controllers()[0];
    wait_for_log(&plain, plain_ctl, "requires SSL for cluster replication");
    let p = plain.client(0).await;
    let tasks = p
        .query("select * from getSlaveReplicationStatus()", &[])
        .await
        .unwrap();
    assert!(
        tasks.is_empty(),
        "the plain slave pulled {} tasks",
        tasks.len()
    );
    let attached: Vec<String> = m
        .query("select * from getRecentSlaveReplicationInfo()", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("connectedController"))
        .collect();
    let secure_ctl = format!("127.0.0.1:{}", secure.port(&secure.controllers()[0]));
    assert_eq!(attached, vec![secure_ctl]);

    // The data nodes take psql's SSL request too, the plain cluster's as well: pgwire is always
    // offered TLS, whatever replication does.
    let (ok, info) = conninfo(&master, 0, "require");
    assert!(ok && info.contains("SSL connection"), "{info}");
    let (ok, info) = conninfo(&plain, 0, "require");
    assert!(ok && info.contains("SSL connection"), "{info}");
    let (ok, info) = conninfo(&plain, 0, "disable");
    assert!(ok && !info.contains("SSL connection"), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slave_does_not_pull_from_a_master_it_cannot_verify() {
    let master = with_replication_ssl(master_builder(false))
        .datanodes(1)
        .build();
    // The data node's certificate only: the controller's does not verify.
    let ca = certificates(&master, &master.datanodes(), "datanode-certificate.pem");
    let slave = trusting(
        with_replication_ssl(slave_builder(&master).datanodes(1)),
        &ca,
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
