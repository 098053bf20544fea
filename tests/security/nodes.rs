//! Node identity: with nothing but TCP access to a node's port, a caller gets nothing from the
//! Flight services (metadata, scans, writes, raft, files); a certificate of another cluster is
//! no better; a member's certificate does not let it speak for another raft member or move the
//! group's term out of bounds; files are served only by the file index's names.

use std::time::Duration;

use bytes::Bytes;
use openraft::raft::VoteRequest;
use openraft::Vote;
use porpoise::controller::feed::MetadataUpdate;
use porpoise::controller::service::{WatchRequest, WATCH};
use porpoise::replication::protocol::{FileTicket, FILE};
use porpoise::rpc::client::Peers;
use porpoise::rpc::identity::{CertificateAuthority, NodeIdentity};
use porpoise::rpc::tls::{client_config, ServerTrust};
use porpoise::rpc::{encode_ticket, RpcError};

use super::common::cluster::TestCluster;

const CALL: Duration = Duration::from_secs(10);

/// The SQLSTATE and message of a refused call (panics on success or another failure).
fn refusal<T: std::fmt::Debug>(answer: Result<T, RpcError>) -> (String, String) {
    match answer {
        Err(RpcError::Remote(e)) => (e.sqlstate.to_string(), e.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A watch of the whole metadata (every user's secrets among it) from the first controller.
async fn watch(cluster: &TestCluster, peers: &Peers) -> Result<MetadataUpdate, RpcError> {
    let addr = format!("127.0.0.1:{}", cluster.port(&cluster.controllers()[0]));
    peers
        .call(
            &addr,
            WATCH,
            &WatchRequest {
                since: 0,
                wait_ms: 0,
            },
            CALL,
        )
        .await
}

/// A `do_get` of a data node's file by `name`, as `peers`; the first error of the stream.
async fn fetch_file(
    cluster: &TestCluster,
    peers: &Peers,
    partition: &str,
    name: &str,
) -> Result<usize, RpcError> {
    let file = FileTicket {
        table: (1, 1),
        partition: partition.into(),
        name: name.into(),
        seed: false,
    };
    do_get(cluster, peers, encode_ticket(FILE, &file).unwrap()).await
}

/// A `do_get` of `ticket` from the first data node, as `peers`: the batches, or the first
/// error of the call or its stream.
async fn do_get(cluster: &TestCluster, peers: &Peers, ticket: Bytes) -> Result<usize, RpcError> {
    use futures::StreamExt;
    let addr = format!("127.0.0.1:{}", cluster.port(&cluster.datanodes()[0]));
    let mut stream = peers.get(&addr, ticket).await?;
    let mut batches = 0;
    while let Some(b) = stream.next().await {
        b.map_err(|e| porpoise::rpc::client::flight_error(&addr, "do_get", e))?;
        batches += 1;
    }
    Ok(batches)
}

/// Calls with TLS that check the server against `cluster`'s CA but present no certificate.
fn tls_without_certificate(cluster: &TestCluster) -> Peers {
    Peers::with_tls(super::common::tls_client_trusting(&cluster.ca_cert()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_a_certificate_of_the_cluster_gets_nothing() {
    let cluster = TestCluster::builder().controllers(1).datanodes(1).build();
    let client = cluster.client(0).await;
    client
        .batch_execute(
            "create database \"dfs://sec\" partitioned by VALUE(1..3);
             create table \"dfs://sec\".\"t\"(k INT, v INT) partitioned by k;
             insert into \"dfs://sec\".\"t\" values (1, 10), (2, 20);",
        )
        .await
        .unwrap();

    // Plain text: refused before the message is read.
    let (code, message) = refusal(watch(&cluster, &Peers::new()).await);
    assert_eq!(code, "28000", "{message}");
    assert!(message.contains("plain text"), "{message}");
    // A 64 MiB message without a certificate is refused as such, not parsed first.
    let ctl = format!("127.0.0.1:{}", cluster.port(&cluster.controllers()[0]));
    let huge = serde_json::json!({ "cmd": "x".repeat(64 << 20) });
    let (code, message) = refusal(
        Peers::new()
            .call::<_, serde_json::Value>(&ctl, "ctl.write", &huge, Duration::from_secs(60))
            .await,
    );
    assert_eq!(code, "28000", "{message}");
    // TLS without a certificate.
    let (code, message) = refusal(watch(&cluster, &tls_without_certificate(&cluster)).await);
    assert_eq!(code, "28000", "{message}");
    assert!(message.contains("none was presented"), "{message}");
    // A certificate of another cluster, even one naming a node and cluster id of this one.
    let home = tempfile::tempdir().unwrap();
    let ours = NodeIdentity::load(&cluster.certs_dir(&cluster.datanodes()[0])).unwrap();
    let forger = CertificateAuthority::create(Some(&ours.cluster)).unwrap();
    forger
        .write_node(home.path(), &cluster.datanodes()[0], &[])
        .unwrap();
    let forged = NodeIdentity::load(home.path()).unwrap();
    // It must trust our servers to get as far as presenting its certificate.
    let forged = porpoise::rpc::identity::NodeIdentity {
        ca: ours.ca.clone(),
        ..forged
    };
    let peers = Peers::with_tls(client_config(&forged, ServerTrust::Cluster).unwrap());
    let (code, message) = refusal(watch(&cluster, &peers).await);
    assert_eq!(code, "28000", "{message}");
    assert!(
        message.contains(&format!(
            "certificate presented (node {} of cluster {})",
            cluster.datanodes()[0],
            ours.cluster
        )),
        "{message}"
    );
    // Nor does it get a scan's worth of a data file.
    let (code, _) = refusal(fetch_file(&cluster, &peers, "1", "x.parquet").await);
    assert_eq!(code, "28000");

    // A member gets the metadata; the node kept serving its SQL clients throughout.
    let member = cluster.peers_as(&cluster.datanodes()[0]);
    assert!(matches!(
        watch(&cluster, &member).await,
        Ok(MetadataUpdate::Snapshot(_) | MetadataUpdate::Changes(_))
    ));
    let rows = client
        .query("select count(*) from \"dfs://sec\".\"t\"", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_fetch_serves_only_files_the_index_lists() {
    let cluster = TestCluster::builder().controllers(1).datanodes(1).build();
    let member = cluster.peers_as(&cluster.controllers()[0]);
    for (partition, name) in [
        ("1", "../../../../../../etc/passwd"),
        ("1", "/etc/passwd"),
        ("../../../../../../etc", "passwd"),
        ("1", "../index.redb"),
    ] {
        let (code, message) = refusal(fetch_file(&cluster, &member, partition, name).await);
        assert_eq!(code, "58P01", "{partition} {name}: {message}");
        assert!(message.contains("no data file"), "{message}");
    }
    // A ticket of a kind no service serves, or that is not a ticket at all, is refused with
    // its reason.
    let unknown = encode_ticket("NoSuchKind", &serde_json::json!({})).unwrap();
    let (code, message) = refusal(do_get(&cluster, &member, unknown).await);
    assert_eq!(code, "0A000", "{message}");
    assert!(message.contains("NoSuchKind"), "{message}");
    let (code, message) = refusal(do_get(&cluster, &member, Bytes::from_static(b"\x00junk")).await);
    assert_eq!(code, "08P01", "{message}");
    // The node is unharmed.
    let client = cluster.client(0).await;
    client.simple_query("select 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_takes_messages_only_from_the_member_they_name_and_no_absurd_term() {
    let mut cluster = TestCluster::builder().controllers(3).datanodes(1).build();
    let client = cluster.client(0).await;
    client
        .batch_execute(
            "create database \"dfs://r\" partitioned by VALUE(1..3);
             create table \"dfs://r\".\"t\"(k INT, v INT) partitioned by k;",
        )
        .await
        .unwrap();
    let controllers = cluster.controllers();
    let target = format!("127.0.0.1:{}", cluster.port(&controllers[0]));
    let vote = |term: u64, node: u64| VoteRequest::<u64>::new(Vote::new(term, node), None);
    let ask = |peers: Peers, req: VoteRequest<u64>| {
        let target = target.clone();
        async move {
            peers
                .call::<_, serde_json::Value>(&target, "raft.vote", &req, CALL)
                .await
        }
    };

    // A data node of the cluster asking for votes as controller 2, with any term.
    let dn = cluster.datanodes()[0].clone();
    let (code, message) = refusal(ask(cluster.peers_as(&dn), vote(7, 2)).await);
    assert_eq!(code, "28000", "{message}");
    // Controller 2 asking as controller 3.
    let (code, _) = refusal(ask(cluster.peers_as(&controllers[1]), vote(7, 3)).await);
    assert_eq!(code, "28000");
    // Controller 2 asking as itself with the term that used to break the group for good.
    let (code, message) = refusal(ask(cluster.peers_as(&controllers[1]), vote(u64::MAX, 2)).await);
    assert_eq!(code, "08P01", "{message}");
    assert!(message.contains("term"), "{message}");

    // The group still elects and commits: its leader killed, another leads, writes go on.
    let leader = cluster.leader().expect("a leader");
    cluster.kill9(&leader);
    cluster.wait_until("a new leader", Duration::from_secs(60), || {
        cluster.leader().is_some_and(|l| l != leader)
    });
    let mut inserted = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !inserted && std::time::Instant::now() < deadline {
        inserted = client
            .batch_execute("insert into \"dfs://r\".\"t\" values (1, 1)")
            .await
            .is_ok();
        if !inserted {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(inserted, "no write committed after the election");
    cluster.start(&leader);
    // A failed attempt may have committed too (in doubt): at least the acknowledged one.
    let rows = client
        .query("select count(*) from \"dfs://r\".\"t\"", &[])
        .await
        .unwrap();
    assert!(rows[0].get::<_, i64>(0) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_slave_may_only_pull_and_is_known_by_its_certificate() {
    let master = TestCluster::builder()
        .controllers(1)
        .datanodes(1)
        .cluster_cfg("clusterReplicationMode", "master")
        .build();
    // A slave cluster's CA, trusted by the master, and a node certificate of it.
    let home = tempfile::tempdir().unwrap();
    let slave_ca = CertificateAuthority::create(Some("dr-site")).unwrap();
    std::fs::write(master.trusted_slaves(), slave_ca.cert_pem()).unwrap();
    slave_ca.write_node(home.path(), "s_ctl1", &[]).unwrap();
    let identity = NodeIdentity::load(home.path()).unwrap();
    let trust = porpoise::rpc::tls::TrustFile::new(master.ca_cert());
    let slave = Peers::with_tls(client_config(&identity, ServerTrust::File(trust)).unwrap());

    // Nothing but the slave calls: not the metadata (every user's verifier), not a scan.
    let (code, message) = refusal(watch(&master, &slave).await);
    assert_eq!(code, "42501", "{message}");
    let addr = format!("127.0.0.1:{}", master.port(&master.datanodes()[0]));
    let (code, _) = refusal(
        slave
            .call::<_, serde_json::Value>(&addr, "dn.prepare", &serde_json::json!({"tid": 1}), CALL)
            .await,
    );
    assert_eq!(code, "42501");
    // Nor apply tasks on a data node, nor scan one.
    let (code, _) = refusal(
        slave
            .call::<_, serde_json::Value>(
                &addr,
                "repl.apply",
                &serde_json::json!({"tasks": []}),
                CALL,
            )
            .await,
    );
    assert_eq!(code, "42501");
    let scan = encode_ticket("Scan", &serde_json::json!({})).unwrap();
    let (code, message) = refusal(do_get(&master, &slave, scan).await);
    assert_eq!(code, "42501", "{message}");

    // A pull is taken, under the cluster id of the certificate whatever the request says.
    let m = master.client(0).await;
    let ctl = format!("127.0.0.1:{}", master.port(&master.controllers()[0]));
    let pull = serde_json::json!({
        "slave": "someone-else",
        "progress": {"connected": "127.0.0.1:1", "controllers": [], "finished": 0, "last_pull_ns": 0},
        "after": 0, "wait_ms": 0, "max": 1
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = slave
            .call::<_, serde_json::Value>(&ctl, "repl.pull", &pull, CALL)
            .await;
        match answer {
            Ok(_) => break,
            // The leader records the replication role a moment after start.
            Err(RpcError::Remote(e)) if e.sqlstate.code() == "55000" || e.retryable => {}
            Err(e) => panic!("the trusted slave's pull failed: {e}"),
        }
        assert!(std::time::Instant::now() < deadline, "no pull was taken");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids: Vec<String> = m
        .query(
            "select slaveClusterId from getRecentSlaveReplicationInfo()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec!["dr-site".to_string()]);

    // Of the seeding and checking calls, only what its replication gives it: no digest of a
    // database not replicated to it (a member of the cluster gets one), no files of a cut the
    // master did not take for it, no seed installed by it on the master's nodes.
    m.batch_execute(
        r#"create database "dfs://secret" partitioned by VALUE(1..3);
           create table "dfs://secret"."t"(k INT, v DOUBLE) partitioned by k;
           insert into "dfs://secret"."t" values (1, 1.5);"#,
    )
    .await
    .unwrap();
    let member = master.peers_as(&master.datanodes()[0]);
    // The controller's applied index now: the insert is visible there.
    let (_, metrics) = master.http_get(&master.controllers()[0], "/metrics");
    let applied: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("porpoise_raft_last_applied"))
        .and_then(|v| v.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .expect("porpoise_raft_last_applied") as u64;
    let digest = |after_task: Option<u64>| serde_json::json!({"db": "dfs://secret", "table": "t", "at": applied, "after_task": after_task});
    for after in [Some(0), None] {
        let (code, message) = refusal(
            slave
                .call::<_, serde_json::Value>(&addr, "dn.digest", &digest(after), CALL)
                .await,
        );
        assert_eq!(code, "42501", "{message}");
    }
    let digests: serde_json::Value = member
        .call(&addr, "dn.digest", &digest(None), CALL)
        .await
        .expect("a member's digest");
    assert_eq!(digests.as_object().map(|d| d.len()), Some(1), "{digests}");
    let (code, message) = refusal(
        slave
            .call::<_, serde_json::Value>(
                &addr,
                "dn.seed_files",
                &serde_json::json!({"table": [16385, 0], "at": 1}),
                CALL,
            )
            .await,
    );
    assert_eq!(code, "55000", "{message}");
    let (code, _) = refusal(
        slave
            .call::<_, serde_json::Value>(
                &addr,
                "repl.seed",
                &serde_json::json!({"db": "dfs://secret", "cut_task": 0, "min_applied_index": 0}),
                CALL,
            )
            .await,
    );
    assert_eq!(code, "42501");

    // A node of the master itself cannot pose as a slave either.
    let (code, _) = refusal(
        member
            .call::<_, serde_json::Value>(&ctl, "repl.pull", &pull, CALL)
            .await,
    );
    assert_eq!(code, "42501");
}

/// Runs `porpoise cert ...`; its standard output, or a panic with its error.
fn cert(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_porpoise"))
        .arg("cert")
        .args(args)
        .output()
        .expect("run porpoise cert");
    assert!(
        out.status.success(),
        "porpoise cert {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_made_by_porpoise_cert_start_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let made = cert(&[
        "create-ca",
        "--certs-dir",
        &path("certs"),
        "--ca-key",
        &path("safe/ca.key"),
        "--cluster-id",
        "prod-a",
    ]);
    assert!(made.contains("cluster prod-a"), "{made}");
    let ports: Vec<u16> = (0..3)
        .map(|_| super::common::cluster::free_port())
        .collect();
    let aliases = ["c_ctl", "c_dn1", "c_dn2"];
    for alias in aliases {
        cert(&[
            "create-node",
            "--certs-dir",
            &path(&format!("home/{alias}/certs")),
            "--ca-cert",
            &path("certs/ca.crt"),
            "--ca-key",
            &path("safe/ca.key"),
            "--alias",
            alias,
            "127.0.0.1",
        ]);
    }
    // A second CA refuses to overwrite the first.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_porpoise"))
        .args(["cert", "create-ca", "--certs-dir", &path("certs")])
        .args(["--ca-key", &path("safe/ca.key")])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not replacing it"));

    let cfg = dir.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(
        cfg.join("cluster.nodes"),
        format!(
            "localSite,mode\n127.0.0.1:{}:c_ctl,controller\n127.0.0.1:{}:c_dn1,datanode\n127.0.0.1:{}:c_dn2,datanode\n",
            ports[0], ports[1], ports[2]
        ),
    )
    .unwrap();
    std::fs::write(cfg.join("controller.cfg"), "mode=controller\n").unwrap();
    std::fs::write(cfg.join("cluster.cfg"), "").unwrap();
    let mut up = std::process::Command::new(env!("CARGO_BIN_EXE_porpoise"))
        .arg("up")
        .arg(&cfg)
        .arg("--home")
        .arg(dir.path().join("home"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // psql verifies the data node against the CA made by hand, and the two data nodes (each
    // reaching the other and the controller with the certificates made by hand) serve the
    // whole cluster.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let psql = |port: u16, sql: &str| {
        std::process::Command::new("psql")
            .arg(format!(
                "postgresql://admin:123456@127.0.0.1:{port}/porpoise?sslmode=verify-full&sslrootcert={}",
                path("certs/ca.crt")
            ))
            .args(["-X", "-A", "-t", "-c", sql])
            .output()
            .expect("run psql")
    };
    loop {
        let out = psql(
            ports[1],
            "create database \"dfs://c\" partitioned by VALUE(0..9); \
             create table \"dfs://c\".\"t\"(k INT, v INT) partitioned by k; \
             insert into \"dfs://c\".\"t\" values (0,0),(1,1),(2,2),(3,3),(4,4),(5,5),(6,6),(7,7),(8,8),(9,9);",
        );
        if out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cluster never served psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = psql(ports[2], "select count(*) from \"dfs://c\".\"t\"");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "10");
    // No CA was made in the home: the nodes used the certificates they were given.
    assert!(!dir.path().join("home").join("ca").exists());
    up.kill().unwrap();
    up.wait().unwrap();
}
