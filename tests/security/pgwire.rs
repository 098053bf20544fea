//! pgwire logins as an attacker tries them: a plain login where TLS is required, channel
//! binding the client cannot prove, a replayed password verifier, a client that never finishes
//! authenticating, one connection too many. Each is refused with the SQLSTATE PostgreSQL uses
//! and the node keeps serving; psql with `channel_binding=require` over TLS logs in.
//!
//! The raw cases speak the protocol by hand over TCP (and TLS) so they can send what no
//! well-behaved driver sends.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ring::{digest, hmac};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::cluster::TestCluster;
use crate::common::{first_value, TestServer, ADMIN_PASSWORD, ADMIN_USER};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// How long a raw read may wait for the server.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

async fn start(config: &[(&'static str, &'static str)]) -> TestServer {
    let config = config.to_vec();
    tokio::task::spawn_blocking(move || TestServer::start_with_config(&config))
        .await
        .expect("start the server")
}

/// Retries `attempt` until it gives a value, for at most a minute (polling, not sleeping as
/// synchronisation: each attempt is a real try).
async fn retry<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(t) = attempt().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- the protocol by hand ----

/// A backend message: its type byte and body.
async fn read_message<S: AsyncRead + Unpin>(s: &mut S) -> Option<(u8, Vec<u8>)> {
    let read = async {
        let tag = s.read_u8().await.ok()?;
        let len = s.read_i32().await.ok()?;
        let mut body = vec![0; usize::try_from(len).ok()?.checked_sub(4)?];
        s.read_exact(&mut body).await.ok()?;
        Some((tag, body))
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .expect("the server answers (or closes) in time")
}

fn startup_message(user: &str) -> Vec<u8> {
    let mut body = 196608i32.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", "porpoise")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

fn password_message(body: &[u8]) -> Vec<u8> {
    let mut msg = vec![b'p'];
    msg.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    msg.extend_from_slice(body);
    msg
}

fn sasl_initial(mechanism: &str, data: &str) -> Vec<u8> {
    let mut body = mechanism.as_bytes().to_vec();
    body.push(0);
    body.extend_from_slice(&(data.len() as i32).to_be_bytes());
    body.extend_from_slice(data.as_bytes());
    password_message(&body)
}

/// SQLSTATE and message of an ErrorResponse body.
fn error_fields(body: &[u8]) -> (String, String) {
    let (mut code, mut message) = (String::new(), String::new());
    for field in body.split(|b| *b == 0) {
        match field.split_first() {
            Some((b'C', v)) => code = String::from_utf8_lossy(v).into_owned(),
            Some((b'M', v)) => message = String::from_utf8_lossy(v).into_owned(),
            _ => {}
        }
    }
    (code, message)
}

/// Sends the startup message; the SASL mechanisms the server offers.
async fn offered_mechanisms<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    user: &str,
) -> Vec<String> {
    s.write_all(&startup_message(user)).await.unwrap();
    let (tag, body) = read_message(s)
        .await
        .expect("an answer to the startup message");
    assert_eq!(tag, b'R', "{:?}", error_fields(&body));
    assert_eq!(body[..4], 10i32.to_be_bytes(), "AuthenticationSASL");
    body[4..]
        .split(|b| *b == 0)
        .filter(|m| !m.is_empty())
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect()
}

/// The ErrorResponse the server ends the connection with, after which it closes it.
async fn expect_refused<S: AsyncRead + Unpin>(s: &mut S) -> (String, String) {
    let (tag, body) = read_message(s).await.expect("an ErrorResponse");
    assert_eq!(tag, b'E', "expected an ErrorResponse, got {}", tag as char);
    let fields = error_fields(&body);
    // Nothing follows it: no ReadyForQuery, the connection is closed.
    assert_eq!(
        read_message(s).await.map(|(t, _)| t as char),
        None,
        "{fields:?}"
    );
    fields
}

/// A whole SCRAM-SHA-256 exchange by a client that holds `salted` as SaltedPassword (what the
/// password yields; an attacker tries what he stole in its place). `Ok` once the server says
/// AuthenticationOk, else the SQLSTATE and message.
async fn scram_login_with<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    user: &str,
    salted: impl Fn(&[u8], u32) -> Vec<u8>,
) -> Result<(), (String, String)> {
    let mechanisms = offered_mechanisms(s, user).await;
    assert!(
        mechanisms.contains(&"SCRAM-SHA-256".to_string()),
        "{mechanisms:?}"
    );
    let client_first_bare = "n=,r=attackernonce";
    s.write_all(&sasl_initial(
        "SCRAM-SHA-256",
        &format!("n,,{client_first_bare}"),
    ))
    .await
    .unwrap();
    let (tag, body) = read_message(s).await.expect("server-first");
    if tag == b'E' {
        return Err(error_fields(&body));
    }
    let server_first = String::from_utf8(body[4..].to_vec()).unwrap();
    let attr = |k: &str| {
        server_first
            .split(',')
            .find_map(|a| a.strip_prefix(k))
            .unwrap()
            .to_string()
    };
    let (nonce, salt, iterations) = (attr("r="), B64.decode(attr("s=")).unwrap(), attr("i="));
    let sp = salted(&salt, iterations.parse().unwrap());
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let client_key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &sp), b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let signature = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
        auth_message.as_bytes(),
    );
    let proof: Vec<u8> = client_key
        .as_ref()
        .iter()
        .zip(signature.as_ref())
        .map(|(k, s)| k ^ s)
        .collect();
    let final_message = format!("{without_proof},p={}", B64.encode(proof));
    s.write_all(&password_message(final_message.as_bytes()))
        .await
        .unwrap();
    let (tag, body) = read_message(s).await.expect("server-final");
    if tag == b'E' {
        return Err(error_fields(&body));
    }
    let (tag, body) = read_message(s).await.expect("AuthenticationOk");
    assert_eq!((tag, &body[..4]), (b'R', &0i32.to_be_bytes()[..]));
    Ok(())
}

/// PBKDF2-HMAC-SHA-256 of an ASCII password: SaltedPassword.
fn salted_password(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(iterations).unwrap(),
        salt,
        password.as_bytes(),
        &mut out,
    );
    out.to_vec()
}

/// A TLS connection to a pgwire port, verifying the server against `cert` (PEM).
async fn tls_connect(port: u16, cert: &Path) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // SSLRequest.
    tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .unwrap();
    assert_eq!(tcp.read_u8().await.unwrap(), b'S', "the server accepts TLS");
    let config = crate::common::tls_client_trusting(cert);
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// The CA that signed the server's certificate, both made on its first start.
fn server_cert(server: &TestServer) -> PathBuf {
    server.home().join("ca").join("ca.crt")
}

// ---- psql ----

fn psql_path() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/psql");
    if path.is_file() {
        return Some(path);
    }
    eprintln!("SKIPPED: psql is not installed (apt-get install postgresql-client)");
    None
}

/// psql as admin on `port` with libpq settings `env`; (succeeded, stdout, stderr).
async fn psql(psql: &Path, port: u16, env: &[(&str, &str)], sql: &str) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(psql);
    cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", ADMIN_USER, "-d", "porpoise", "-c", sql])
        .env("PGPASSWORD", ADMIN_PASSWORD)
        .env("PGCONNECT_TIMEOUT", "30")
        .env_remove("PGSERVICE")
        .env_remove("PGSSLMODE")
        .env_remove("PGCHANNELBINDING")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("psql finishes")
        .expect("run psql");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const CHANNEL_BINDING: &[(&str, &str)] =
    &[("PGSSLMODE", "require"), ("PGCHANNELBINDING", "require")];

/// psql's own report of the connection: says "SSL connection" over TLS.
const CONNINFO: &str = r"\conninfo";

// ---- the tests ----

#[tokio::test]
async fn psql_with_channel_binding_required_logs_in_over_tls_by_default() {
    let Some(psql_bin) = psql_path() else { return };
    let server = start(&[]).await;
    // No TLS key in the configuration: TLS is on anyway, and SCRAM-SHA-256-PLUS with it.
    let (ok, stdout, stderr) =
        psql(&psql_bin, server.port(), CHANNEL_BINDING, "select 41 + 1").await;
    assert!(ok, "{stderr}\n{}", server.log());
    assert_eq!(stdout.trim(), "42");
    // Without TLS there is nothing to bind to: libpq refuses on its own, as the server
    // offers only SCRAM-SHA-256 there.
    let plain = [("PGSSLMODE", "disable"), ("PGCHANNELBINDING", "require")];
    let (ok, _, stderr) = psql(&psql_bin, server.port(), &plain, "select 1").await;
    assert!(!ok);
    assert!(stderr.contains("channel binding"), "{stderr}");
}

#[tokio::test]
async fn over_tls_both_mechanisms_are_offered_and_a_binding_to_another_certificate_is_refused() {
    let server = start(&[]).await;
    let cert = server_cert(&server);
    let mut tls = tls_connect(server.port(), &cert).await;
    let mechanisms = offered_mechanisms(&mut tls, ADMIN_USER).await;
    assert_eq!(mechanisms, ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
    // A man in the middle: the client's TLS session ends at another certificate, whose hash
    // it binds to. The password is right; the binding gives it away.
    let mut client = postgres_protocol::authentication::sasl::ScramSha256::new(
        ADMIN_PASSWORD.as_bytes(),
        postgres_protocol::authentication::sasl::ChannelBinding::tls_server_end_point(
            digest::digest(&digest::SHA256, b"the attacker's certificate")
                .as_ref()
                .to_vec(),
        ),
    );
    let first = String::from_utf8(client.message().to_vec()).unwrap();
    tls.write_all(&sasl_initial("SCRAM-SHA-256-PLUS", &first))
        .await
        .unwrap();
    let (tag, body) = read_message(&mut tls).await.expect("server-first");
    assert_eq!(tag, b'R', "{:?}", error_fields(&body));
    client.update(&body[4..]).unwrap();
    tls.write_all(&password_message(client.message()))
        .await
        .unwrap();
    let (code, message) = expect_refused(&mut tls).await;
    assert_eq!(code, "28000", "{message}");
    assert!(message.contains("channel binding"), "{message}");

    // The same client bound to the real certificate logs in.
    let mut tls = tls_connect(server.port(), &cert).await;
    offered_mechanisms(&mut tls, ADMIN_USER).await;
    use rustls::pki_types::pem::PemObject;
    let node_cert = server.home().join("certs").join("node.crt");
    let der = rustls::pki_types::CertificateDer::pem_file_iter(&node_cert)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut client = postgres_protocol::authentication::sasl::ScramSha256::new(
        ADMIN_PASSWORD.as_bytes(),
        postgres_protocol::authentication::sasl::ChannelBinding::tls_server_end_point(
            digest::digest(&digest::SHA256, der.as_ref())
                .as_ref()
                .to_vec(),
        ),
    );
    let first = String::from_utf8(client.message().to_vec()).unwrap();
    tls.write_all(&sasl_initial("SCRAM-SHA-256-PLUS", &first))
        .await
        .unwrap();
    let (_, body) = read_message(&mut tls).await.expect("server-first");
    client.update(&body[4..]).unwrap();
    tls.write_all(&password_message(client.message()))
        .await
        .unwrap();
    let (tag, body) = read_message(&mut tls).await.expect("server-final");
    assert_eq!(tag, b'R', "{:?}", error_fields(&body));
    client
        .finish(&body[4..])
        .expect("the server proves it knows the verifier");
}

#[tokio::test]
async fn without_tls_a_client_claiming_channel_binding_is_refused() {
    let server = start(&[]).await;
    let connect = || TcpStream::connect(("127.0.0.1", server.port()));

    let mut s = connect().await.unwrap();
    assert_eq!(
        offered_mechanisms(&mut s, ADMIN_USER).await,
        ["SCRAM-SHA-256"]
    );
    s.write_all(&sasl_initial(
        "SCRAM-SHA-256-PLUS",
        "p=tls-server-end-point,,n=,r=abc",
    ))
    .await
    .unwrap();
    let (code, message) = expect_refused(&mut s).await;
    assert_eq!(code, "28000", "{message}");

    // Binding data under the plain mechanism.
    let mut s = connect().await.unwrap();
    offered_mechanisms(&mut s, ADMIN_USER).await;
    s.write_all(&sasl_initial(
        "SCRAM-SHA-256",
        "p=tls-server-end-point,,n=,r=abc",
    ))
    .await
    .unwrap();
    let (code, message) = expect_refused(&mut s).await;
    assert_eq!(code, "28000", "{message}");

    // The node keeps serving.
    let client = server.client().await;
    assert_eq!(first_value(&client, "select 7").await, "7");
}

#[tokio::test]
async fn a_refused_client_cannot_run_statements_on_the_same_connection() {
    let server = start(&[]).await;
    let mut s = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    offered_mechanisms(&mut s, ADMIN_USER).await;
    // A wrong proof, and a statement right behind it in the same write.
    let mut bytes = sasl_initial("SCRAM-SHA-256", "n,,n=,r=abc");
    let mut query = vec![b'Q'];
    let sql = b"create user mallory with password 'x'\0";
    query.extend_from_slice(&((sql.len() + 4) as i32).to_be_bytes());
    query.extend_from_slice(sql);
    bytes.extend_from_slice(&password_message(b"c=biws,r=abc,p=AAAA"));
    bytes.extend_from_slice(&query);
    s.write_all(&bytes).await.unwrap();
    let mut answers = Vec::new();
    while let Some((tag, body)) = read_message(&mut s).await {
        answers.push((tag as char, error_fields(&body)));
    }
    let admin = server.client().await;
    let rows = admin
        .simple_query("select rolname from pg_roles where rolname = 'mallory'")
        .await
        .unwrap();
    assert!(
        !rows
            .iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))),
        "the statement of a refused client ran"
    );
    // server-first, then the refusal, then the connection is closed (no ReadyForQuery).
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[1].0, 'E');
    assert_eq!(answers[1].1 .0, "08P01", "{answers:?}");
}

#[tokio::test]
async fn a_replayed_verifier_does_not_log_in() {
    let server = start(&[]).await;
    let admin = server.client().await;
    admin
        .batch_execute("create user victim with password 'correct horse'")
        .await
        .unwrap();
    // Everything the server wrote (raft log, snapshots): the verifier is there, the
    // SaltedPassword nowhere.
    let written = files_text(&server.home());
    assert!(
        written.contains("\"stored_key\""),
        "the search finds the verifier"
    );
    assert!(!written.contains("salted_password"));
    let record = &written[written
        .rfind("\"name\":\"victim\"")
        .expect("victim's record")..];
    let number = |key: &str| -> Vec<u8> {
        let at = record.find(&format!("\"{key}\":[")).expect(key) + key.len() + 4;
        let list = &record[at..at + record[at..].find(']').unwrap()];
        list.split(',').map(|n| n.trim().parse().unwrap()).collect()
    };
    let (stored_key, server_key) = (number("stored_key"), number("server_key"));

    let connect = || TcpStream::connect(("127.0.0.1", server.port()));
    // The right password, through the same hand-made client: it works.
    let mut s = connect().await.unwrap();
    scram_login_with(&mut s, "victim", |salt, i| {
        salted_password("correct horse", salt, i)
    })
    .await
    .expect("the password logs in");
    // What a thief of the stored verifier can try in place of SaltedPassword.
    for stolen in [stored_key, server_key] {
        let mut s = connect().await.unwrap();
        let refused = scram_login_with(&mut s, "victim", |_, _| stolen.clone())
            .await
            .expect_err("a stolen verifier logs in");
        assert_eq!(refused.0, "28P01", "{refused:?}");
        assert_eq!(
            refused.1,
            "password authentication failed for user \"victim\""
        );
    }
    // An unknown user fails the same way.
    let mut s = connect().await.unwrap();
    let refused = scram_login_with(&mut s, "nobody", |salt, i| salted_password("x", salt, i))
        .await
        .expect_err("an unknown user logs in");
    assert_eq!(refused.0, "28P01");
}

/// Every file under `dir`, as lossy text, concatenated (the last user record written is the
/// last match).
fn files_text(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    for f in files {
        out.push_str(&String::from_utf8_lossy(
            &std::fs::read(f).unwrap_or_default(),
        ));
    }
    out
}

#[tokio::test]
async fn with_pgwire_ssl_only_a_plain_login_is_refused_and_tls_logins_work() {
    let server = start(&[("pgwireSSLOnly", "true")]).await;
    let e = server
        .client_as(ADMIN_USER, ADMIN_PASSWORD)
        .await
        .expect_err("a plain login is refused");
    let db = e.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), "28000");
    assert!(db.message().contains("TLS only"), "{}", db.message());
    // Refused before any password was asked: a raw client sees the error at once.
    let mut s = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    s.write_all(&startup_message(ADMIN_USER)).await.unwrap();
    let (code, _) = expect_refused(&mut s).await;
    assert_eq!(code, "28000");
    // Over TLS it is served.
    let Some(psql_bin) = psql_path() else { return };
    let (ok, stdout, stderr) = psql(&psql_bin, server.port(), CHANNEL_BINDING, CONNINFO).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("SSL connection"), "{stdout}");
}

#[tokio::test]
async fn a_client_that_never_finishes_authenticating_is_disconnected() {
    let server = start(&[("authenticationTimeout", "1")]).await;
    // Logged in before: stays connected.
    let admin = server.client().await;
    let started = Instant::now();
    let mut stalled = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    offered_mechanisms(&mut stalled, ADMIN_USER).await;
    // Never answers: the server closes the connection, without an error to read.
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(30), stalled.read(&mut buf))
        .await
        .expect("the server closed the stalled connection within 30 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // One that stalls in the middle of TLS is closed too.
    let mut tls = tls_connect(server.port(), &server_cert(&server)).await;
    let read = tokio::time::timeout(Duration::from_secs(30), tls.read(&mut buf))
        .await
        .expect("the server closed the stalled TLS connection within 30 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // The node serves the session that had logged in, and new ones.
    assert_eq!(first_value(&admin, "select 1").await, "1");
    let again = server.client().await;
    assert_eq!(first_value(&again, "select 2").await, "2");
}

#[tokio::test]
async fn beyond_max_connections_a_client_gets_53300_and_a_closed_session_frees_its_slot() {
    let server = start(&[("maxConnections", "2")]).await;
    let first = server.client().await;
    let second = server.client().await;
    let e = server
        .client_as(ADMIN_USER, ADMIN_PASSWORD)
        .await
        .expect_err("a third connection is refused");
    let db = e.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), "53300");
    assert!(
        db.message().contains("too many connections"),
        "{}",
        db.message()
    );
    // The sessions there are unaffected.
    assert_eq!(first_value(&first, "select 1").await, "1");
    assert_eq!(first_value(&second, "select 2").await, "2");
    // Closing one frees its slot (the server notices the close a moment later).
    drop(first);
    let third = retry("a slot to be freed", || async {
        match server.client_as(ADMIN_USER, ADMIN_PASSWORD).await {
            Ok(c) => Some(c),
            Err(e) => {
                let code = e.as_db_error().map(|d| d.code().code().to_string());
                assert_eq!(code.as_deref(), Some("53300"), "{e}");
                None
            }
        }
    })
    .await;
    assert_eq!(first_value(&third, "select 3").await, "3");
    assert_eq!(first_value(&second, "select 4").await, "4");
}

/// Opens a TLS session and sends a startup message: the first message the server answers with
/// (`R` when it asks for a password, `E` when it refuses), the connection kept open.
async fn tls_session(
    port: u16,
    cert: &Path,
) -> (tokio_rustls::client::TlsStream<TcpStream>, u8, Vec<u8>) {
    let mut tls = tls_connect(port, cert).await;
    tls.write_all(&startup_message(ADMIN_USER)).await.unwrap();
    let (tag, body) = read_message(&mut tls).await.expect("an answer");
    (tls, tag, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_node_serves_tls_by_default_and_reads_the_pgwire_keys_of_cluster_cfg() {
    let cluster = tokio::task::spawn_blocking(|| {
        TestCluster::builder()
            .controllers(1)
            .datanodes(1)
            .cluster_cfg("pgwireSSLOnly", "true")
            .cluster_cfg("maxConnections", "1")
            .build()
    })
    .await
    .unwrap();
    let alias = cluster.datanodes()[0].clone();
    let port = cluster.port(&alias);
    let cert = cluster.ca_cert();
    // With one slot, a connection may find it still held by the one before: retried.
    let code = retry("a plain login to be refused for want of TLS", || async {
        let e = crate::common::connect(&cluster.url(0))
            .await
            .expect_err("a plain login is refused");
        let code = e.as_db_error().map(|d| d.code().code().to_string());
        (code.as_deref() != Some("53300")).then_some(code)
    })
    .await;
    assert_eq!(code.as_deref(), Some("28000"));
    if let Some(psql_bin) = psql_path() {
        let (ok, stdout, stderr) = retry("psql over TLS with channel binding", || async {
            let run = psql(&psql_bin, port, CHANNEL_BINDING, CONNINFO).await;
            (!run.2.contains("too many connections")).then_some(run)
        })
        .await;
        assert!(ok, "{stderr}\n{}", cluster.log(&alias));
        assert!(stdout.contains("SSL connection"), "{stdout}");
    }
    // maxConnections=1: while one session holds the slot, another is refused with 53300.
    let held = retry("the slot to be free", || async {
        let (tls, tag, _) = tls_session(port, &cert).await;
        (tag == b'R').then_some(tls)
    })
    .await;
    let (_refused, tag, body) = tls_session(port, &cert).await;
    assert_eq!(tag, b'E');
    let (code, message) = error_fields(&body);
    assert_eq!(code, "53300", "{message}");
    assert!(message.contains("too many connections"), "{message}");
    drop(held);
}
