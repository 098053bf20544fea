//! The HTTP pages of a node's port: `/metrics` answers anyone (Prometheus), the pages that
//! show the cluster's topology answer only an admin whose password came over TLS, and a flood
//! of requests does not make the node call every other node each time.

use std::time::Instant;

use crate::common::cluster::{http_get, http_get_as, https_get, https_get_with, TestCluster};
use crate::common::{ADMIN_PASSWORD, ADMIN_USER};

const TOPOLOGY: [&str; 3] = ["/cluster/stats", "/datanodes", "/raft/stats"];

fn tls_cluster() -> TestCluster {
    TestCluster::builder()
        .prefix("http")
        .controllers(1)
        .datanodes(1)
        .build()
}

/// The value of a counter or gauge in a `/metrics` body.
fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_pages_need_an_admin_password_over_tls_and_metrics_do_not() {
    let cluster = tls_cluster();
    let client = cluster.client(0).await;
    client
        .batch_execute("create user bob with password 'bobs-secret'")
        .await
        .unwrap();
    let admin = Some((ADMIN_USER, ADMIN_PASSWORD));
    for node in cluster.controllers().into_iter().chain(cluster.datanodes()) {
        let port = cluster.port(&node);
        let cert = cluster.ca_cert();
        // Prometheus scrapes without credentials, plain or over TLS.
        let (code, body) = http_get(port, "/metrics");
        assert_eq!(code, 200, "{node} /metrics: {body}");
        assert!(body.contains("porpoise_metadata_version{"), "{body}");
        assert_eq!(https_get(port, &cert, "/metrics", None).0, 200);
        for page in TOPOLOGY {
            let what = format!("{node} {page}");
            // Nothing proven: 401, saying how to authenticate.
            let (code, body) = http_get(port, page);
            assert_eq!(code, 401, "{what}: {body}");
            assert!(body.contains("https://"), "{what}: {body}");
            // The right password in clear over plain TCP: refused without being checked.
            let (code, body) = http_get_as(port, page, admin);
            assert_eq!(code, 403, "{what}: {body}");
            assert!(
                body.contains("only over TLS") && body.contains("https://"),
                "{body}"
            );
            // Over TLS: no credentials, a wrong password, a user who is not an admin.
            assert_eq!(https_get(port, &cert, page, None).0, 401, "{what}");
            let (code, body) = https_get(port, &cert, page, Some((ADMIN_USER, "654321")));
            assert_eq!(code, 401, "{what}: {body}");
            assert!(body.contains("wrong user or password"), "{what}: {body}");
            let bob = Some(("bob", "bobs-secret"));
            assert_eq!(https_get(port, &cert, page, bob).0, 401, "{what}");
            // An admin's password over TLS: the page.
            let (code, body) = https_get(port, &cert, page, admin);
            assert_eq!(code, 200, "{what}: {body}");
            serde_json::from_str::<serde_json::Value>(&body)
                .unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
        }
    }
    let (_, body) = cluster.admin_get(&cluster.datanodes()[0], "/cluster/stats");
    assert!(body.contains("\"health\":\"green\""), "{body}");
    // The node kept serving SQL through all of it.
    assert_eq!(
        client
            .query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_page_requests_costs_one_round_of_calls_per_second() {
    let cluster = tls_cluster();
    let dn = cluster.datanodes()[0].clone();
    let fan_outs = || {
        metric(
            &http_get(cluster.port(&dn), "/metrics").1,
            "porpoise_http_fan_outs_total",
        )
    };
    let before = fan_outs();
    let start = Instant::now();
    let requests = 60;
    for i in 0..requests {
        let page = ["/cluster/stats", "/datanodes", "/raft/stats"][i % 3];
        let (code, body) = cluster.admin_get(&dn, page);
        assert_eq!(code, 200, "{page}: {body}");
    }
    let seconds = start.elapsed().as_secs_f64();
    let made = fan_outs() - before;
    // `/cluster/stats` and `/raft/stats` share the controllers' answers; `/datanodes` has its
    // own: at most two rounds per started second (plus the first of each).
    let most = 2.0 * (seconds.ceil() + 1.0);
    println!("{requests} requests in {seconds:.2}s made {made} rounds of calls");
    assert!(made >= 2.0, "the pages asked nobody: {made}");
    assert!(
        made <= most,
        "{requests} requests in {seconds:.2}s made {made} rounds of calls (at most {most})"
    );
}

/// A TLS client presenting a client certificate of `cluster`'s CA for SQL user `user`.
fn client_certificate(cluster: &TestCluster, user: &str) -> std::sync::Arc<rustls::ClientConfig> {
    use porpoise::rpc::identity::{certs, CertificateAuthority, Subject};
    use rustls::pki_types::pem::PemObject;
    let ca_dir = cluster.home().join("ca");
    let ca = CertificateAuthority::load(&ca_dir.join("ca.crt"), &ca_dir.join("ca.key")).unwrap();
    let (cert, key) = ca.issue(Subject::User(user.into()), &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.crt"), cert).unwrap();
    let chain = certs(&dir.path().join("c.crt")).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&cluster.ca_cert()).unwrap() {
        roots.add(c).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    std::sync::Arc::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admins_client_certificate_opens_the_topology_pages_and_nothing_else() {
    let cluster = tls_cluster();
    let client = cluster.client(0).await;
    client
        .batch_execute("create user bob with password 'bobs-secret'")
        .await
        .unwrap();
    let port = cluster.port(&cluster.controllers()[0]);
    let admin = client_certificate(&cluster, ADMIN_USER);
    let (code, body) = https_get_with(port, admin.clone(), "/cluster/stats", None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"health\""), "{body}");
    // A user's certificate proves who they are, not that they may see the pages.
    let (code, body) = https_get_with(
        port,
        client_certificate(&cluster, "bob"),
        "/datanodes",
        None,
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("not an admin"), "{body}");
    // Nor does a client certificate make its holder a node: the RPC services refuse it.
    let peers = porpoise::rpc::client::Peers::with_tls(admin);
    let addr = format!("127.0.0.1:{port}");
    let answer = peers
        .call::<_, serde_json::Value>(
            &addr,
            porpoise::controller::service::WATCH,
            &serde_json::json!({"since": 0, "wait_ms": 0}),
            std::time::Duration::from_secs(10),
        )
        .await;
    match answer {
        Err(porpoise::rpc::RpcError::Remote(e)) => assert_eq!(e.sqlstate.code(), "28000", "{e:?}"),
        other => panic!("a client certificate made a node call: {other:?}"),
    }
}
