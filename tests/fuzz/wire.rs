//! pgwire messages over raw TCP: random and mutated startup packets (SSLRequest,
//! GSSENCRequest, CancelRequest, odd protocol versions and parameters, huge, short and
//! truncated length fields), garbage SASL responses after a valid startup, and random
//! messages (semi-valid Parse/Bind/Describe/Execute/Query/COPY/FunctionCall and random types
//! and lengths) after a real SCRAM-SHA-256 login.
//!
//! Each case sends its bytes, then (after a login) a Sync and a `select 1`, and closes its
//! write half. Properties: the server closes the connection within the deadline (it does not
//! wait forever on a half message), every ErrorResponse carries a SQLSTATE that is not an
//! internal error, the server keeps running, and a normal client can still connect and query.

use std::time::Instant;

use bytes::{BufMut, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::common::{ADMIN_PASSWORD, ADMIN_USER};
use super::{check, runner, runtime, still_answers, Fuzzed, CASE_TIMEOUT};

const PROTOCOL_3_0: u32 = 196_608;
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;

/// The value of a length field.
#[derive(Debug, Clone)]
pub enum Length {
    /// The length of what follows (plus the field itself), as the protocol wants.
    Exact,
    /// Off by this much.
    Off(i16),
    /// This value, whatever follows.
    Value(u32),
}

impl Length {
    fn value(&self, body: usize) -> u32 {
        let exact = body as i64 + 4;
        match self {
            Length::Exact => exact as u32,
            Length::Off(d) => (exact + *d as i64) as u32,
            Length::Value(v) => *v,
        }
    }
}

/// One thing sent on the connection.
#[derive(Debug, Clone)]
pub enum Packet {
    /// A message without a type byte (startup-phase packets): length, then body.
    Untyped { body: Vec<u8>, len: Length },
    /// A typed message: type byte, length, body.
    Typed { tag: u8, body: Vec<u8>, len: Length },
    /// Bytes as they are.
    Raw(Vec<u8>),
}

impl Packet {
    fn encode(&self, out: &mut BytesMut) {
        match self {
            Packet::Untyped { body, len } => {
                out.put_u32(len.value(body.len()));
                out.put_slice(body);
            }
            Packet::Typed { tag, body, len } => {
                out.put_u8(*tag);
                out.put_u32(len.value(body.len()));
                out.put_slice(body);
            }
            Packet::Raw(bytes) => out.put_slice(bytes),
        }
    }
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn length() -> impl Strategy<Value = Length> {
    prop_oneof![
        6 => Just(Length::Exact),
        2 => (-6i16..6).prop_map(Length::Off),
        2 => prop::sample::select(vec![
            0u32, 1, 3, 4, 5, 7, 8, 9, 16, 10_000, 10_001, 65_536, 0x3fff_ffff, 0x4000_0000,
            0x7fff_ffff, 0x8000_0000, 0xffff_fff0, 0xffff_ffff,
        ])
        .prop_map(Length::Value),
        1 => any::<u32>().prop_map(Length::Value),
    ]
}

/// Short strings with the characters that matter to the protocol: NUL, `=`, `,`, unicode.
fn wire_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z_]{1,12}",
        "\\PC{0,16}",
        ".{0,8}",
        Just("x".repeat(20_000)),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// A body with a flipped byte, a cut, or garbage appended, some of the time.
fn corrupt(body: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        body,
        prop::option::weighted(0.15, (any::<Index>(), any::<u8>())),
        prop::option::weighted(0.15, any::<Index>()),
        prop::option::weighted(0.1, bytes(16)),
    )
        .prop_map(|(mut body, flip, cut, extra)| {
            if let (Some((i, b)), false) = (flip, body.is_empty()) {
                let i = i.index(body.len());
                body[i] = b;
            }
            if let Some(i) = cut {
                body.truncate(i.index(body.len() + 1));
            }
            if let Some(extra) = extra {
                body.extend(extra);
            }
            body
        })
}

fn startup_body() -> impl Strategy<Value = Vec<u8>> {
    let version = prop_oneof![
        4 => Just(PROTOCOL_3_0),
        1 => Just(196_610u32), // 3.2
        1 => Just(196_609u32), // 3.1
        1 => Just(131_072u32), // 2.0
        1 => Just(1_234u32 << 16 | 5_678),
        1 => any::<u32>(),
    ];
    let key = prop_oneof![
        Just("user".to_owned()),
        Just("database".to_owned()),
        Just("options".to_owned()),
        Just("application_name".to_owned()),
        Just("replication".to_owned()),
        Just("_pq_.x".to_owned()),
        wire_string(),
    ];
    let value = prop_oneof![
        Just(ADMIN_USER.to_owned()),
        Just("porpoise".to_owned()),
        Just("-c x=1".to_owned()),
        wire_string(),
    ];
    (
        version,
        prop::collection::vec((key, value), 0..5),
        any::<bool>(),
    )
        .prop_map(|(version, params, terminated)| {
            let mut body = version.to_be_bytes().to_vec();
            for (k, v) in params {
                cstr(&mut body, &k);
                cstr(&mut body, &v);
            }
            if terminated {
                body.push(0);
            }
            body
        })
}

/// A packet of the startup phase.
fn startup_packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        5 => (corrupt(startup_body()), length()).prop_map(|(body, len)| Packet::Untyped { body, len }),
        2 => length().prop_map(|len| Packet::Untyped { body: SSL_REQUEST.to_be_bytes().to_vec(), len }),
        1 => length().prop_map(|len| Packet::Untyped { body: GSSENC_REQUEST.to_be_bytes().to_vec(), len }),
        2 => (any::<i32>(), bytes(9), length()).prop_map(|(pid, key, len)| {
            let mut body = CANCEL_REQUEST.to_be_bytes().to_vec();
            body.extend(pid.to_be_bytes());
            body.extend(key);
            Packet::Untyped { body, len }
        }),
        1 => bytes(64).prop_map(Packet::Raw),
    ]
}

/// A valid startup for the admin user.
fn admin_startup() -> Packet {
    let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
    for (k, v) in [("user", ADMIN_USER), ("database", "porpoise")] {
        cstr(&mut body, k);
        cstr(&mut body, v);
    }
    body.push(0);
    Packet::Untyped {
        body,
        len: Length::Exact,
    }
}

/// A SASLInitialResponse or SASLResponse with odd contents.
fn sasl_packet() -> impl Strategy<Value = Packet> {
    let mechanism = prop_oneof![
        Just(SCRAM_SHA_256.to_owned()),
        Just("SCRAM-SHA-256-PLUS".to_owned()),
        Just("PLAIN".to_owned()),
        wire_string(),
    ];
    let data = prop_oneof![
        Just(b"n,,n=,r=abcdefghijklmnop".to_vec()),
        Just(b"y,,n=,r=".to_vec()),
        Just(b"p=tls-server-end-point,,n=,r=x".to_vec()),
        Just(b"n,,n=admin,r=x,extra".to_vec()),
        Just(b"c=biws,r=x,p=AAAA".to_vec()),
        bytes(64),
    ];
    let initial = (
        mechanism,
        data,
        prop_oneof![Just(None), any::<i32>().prop_map(Some)],
    )
        .prop_map(|(m, data, declared)| {
            let mut body = Vec::new();
            cstr(&mut body, &m);
            body.extend(declared.unwrap_or(data.len() as i32).to_be_bytes());
            body.extend(data);
            body
        });
    (prop_oneof![3 => corrupt(initial), 1 => bytes(64)], length()).prop_map(|(body, len)| {
        Packet::Typed {
            tag: b'p',
            body,
            len,
        }
    })
}

/// What a stranger can send before logging in.
fn pre_auth() -> impl Strategy<Value = Vec<Packet>> {
    prop_oneof![
        3 => prop::collection::vec(startup_packet(), 1..4),
        2 => prop::collection::vec(sasl_packet(), 1..4).prop_map(|mut p| {
            p.insert(0, admin_startup());
            p
        }),
        1 => prop::collection::vec(any_typed(), 1..4).prop_map(|mut p| {
            p.insert(0, admin_startup());
            p
        }),
    ]
}

/// Statement and portal names the messages share, so they meet each other.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("s1".to_owned()),
        Just("p1".to_owned()),
        wire_string(),
    ]
}

fn wire_sql() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "select 1",
            "select $1",
            "select $1::int + $2",
            "select $99999",
            r#"insert into "dfs://w"."t" values ($1, $2)"#,
            r#"select * from "dfs://w"."t" where a = $1"#,
            r#"copy "dfs://w"."t" from stdin"#,
            r#"copy "dfs://w"."t" from stdin (format csv)"#,
            "begin",
            "select 1; select 2",
            "",
            ";",
            "bogus",
        ])
        .prop_map(str::to_owned),
        wire_string(),
    ]
}

fn i16s(max: usize) -> impl Strategy<Value = Vec<i16>> {
    prop::collection::vec(prop_oneof![0i16..2, any::<i16>()], 0..max)
}

/// A count field: usually the true count, sometimes a lie.
fn count() -> impl Strategy<Value = Option<i16>> {
    prop_oneof![
        4 => Just(None),
        1 => prop::sample::select(vec![-1i16, 1, 2, 0x7fff, i16::MIN]).prop_map(Some),
    ]
}

fn parse_body() -> impl Strategy<Value = Vec<u8>> {
    (
        name(),
        wire_sql(),
        prop::collection::vec(
            prop_oneof![Just(0u32), Just(23), Just(25), any::<u32>()],
            0..4,
        ),
        count(),
    )
        .prop_map(|(n, sql, oids, lie)| {
            let mut b = Vec::new();
            cstr(&mut b, &n);
            cstr(&mut b, &sql);
            b.extend(lie.unwrap_or(oids.len() as i16).to_be_bytes());
            for o in oids {
                b.extend(o.to_be_bytes());
            }
            b
        })
}

fn bind_body() -> impl Strategy<Value = Vec<u8>> {
    let param = prop_oneof![
        Just(None),
        Just(Some(b"1".to_vec())),
        Just(Some(vec![0, 0, 0, 1])),
        Just(Some(b"abc".to_vec())),
        bytes(12).prop_map(Some),
    ];
    (
        name(),
        name(),
        i16s(4),
        count(),
        prop::collection::vec((param, prop::option::weighted(0.1, any::<i32>())), 0..4),
        count(),
        i16s(4),
        count(),
    )
        .prop_map(
            |(portal, stmt, formats, lie_f, params, lie_p, results, lie_r)| {
                let mut b = Vec::new();
                cstr(&mut b, &portal);
                cstr(&mut b, &stmt);
                b.extend(lie_f.unwrap_or(formats.len() as i16).to_be_bytes());
                for f in formats {
                    b.extend(f.to_be_bytes());
                }
                b.extend(lie_p.unwrap_or(params.len() as i16).to_be_bytes());
                for (p, declared) in params {
                    let len = match (&p, declared) {
                        (_, Some(d)) => d,
                        (None, None) => -1,
                        (Some(p), None) => p.len() as i32,
                    };
                    b.extend(len.to_be_bytes());
                    b.extend(p.unwrap_or_default());
                }
                b.extend(lie_r.unwrap_or(results.len() as i16).to_be_bytes());
                for r in results {
                    b.extend(r.to_be_bytes());
                }
                b
            },
        )
}

/// A typed message: mostly the frontend messages of the extended and simple protocols with
/// plausible bodies, sometimes any type byte with any body.
fn any_typed() -> impl Strategy<Value = Packet> {
    let kind_and_body = prop_oneof![
        3 => wire_sql().prop_map(|s| { let mut b = Vec::new(); cstr(&mut b, &s); (b'Q', b) }),
        3 => parse_body().prop_map(|b| (b'P', b)),
        3 => bind_body().prop_map(|b| (b'B', b)),
        2 => (prop::sample::select(vec![b'S', b'P', b'X']), name())
            .prop_map(|(v, n)| { let mut b = vec![v]; cstr(&mut b, &n); (b'D', b) }),
        2 => (name(), prop_oneof![Just(0i32), Just(1), any::<i32>()])
            .prop_map(|(n, max)| { let mut b = Vec::new(); cstr(&mut b, &n); b.extend(max.to_be_bytes()); (b'E', b) }),
        1 => (prop::sample::select(vec![b'S', b'P', b'X']), name())
            .prop_map(|(v, n)| { let mut b = vec![v]; cstr(&mut b, &n); (b'C', b) }),
        2 => Just((b'S', Vec::new())),
        1 => Just((b'H', Vec::new())),
        2 => bytes(64).prop_map(|b| (b'd', b)),
        1 => Just((b'c', Vec::new())),
        1 => wire_string().prop_map(|s| { let mut b = Vec::new(); cstr(&mut b, &s); (b'f', b) }),
        1 => bytes(32).prop_map(|b| (b'F', b)),
        1 => bytes(32).prop_map(|b| (b'p', b)),
        1 => Just((b'X', Vec::new())),
        2 => (any::<u8>(), bytes(32)),
    ];
    (kind_and_body, length()).prop_flat_map(|((tag, body), len)| {
        corrupt(Just(body)).prop_map(move |body| Packet::Typed {
            tag,
            body,
            len: len.clone(),
        })
    })
}

/// What an authenticated client can send.
fn post_auth() -> impl Strategy<Value = Vec<Packet>> {
    prop::collection::vec(
        prop_oneof![12 => any_typed(), 1 => bytes(32).prop_map(Packet::Raw)],
        1..8,
    )
}

/// A backend message: its type byte and body.
struct Backend {
    tag: u8,
    body: Vec<u8>,
}

/// Splits what the server sent into messages (an incomplete tail is ignored).
fn backend_messages(mut data: &[u8]) -> Vec<Backend> {
    let mut out = Vec::new();
    // An SSLRequest or GSSENCRequest gets one byte, 'N', with no length.
    while data.len() >= 5 {
        let tag = data[0];
        let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        if len < 4 || data.len() < 1 + len {
            if tag == b'N' {
                data = &data[1..];
                continue;
            }
            break;
        }
        out.push(Backend {
            tag,
            body: data[5..1 + len].to_vec(),
        });
        data = &data[1 + len..];
    }
    out
}

/// The SQLSTATE of an ErrorResponse body.
fn error_code(body: &[u8]) -> Option<String> {
    let mut rest = body;
    while let Some((&field, tail)) = rest.split_first() {
        if field == 0 {
            break;
        }
        let end = tail.iter().position(|&b| b == 0)?;
        if field == b'C' {
            return Some(String::from_utf8_lossy(&tail[..end]).into_owned());
        }
        rest = &tail[end + 1..];
    }
    None
}

/// Reads everything until the server closes the connection, within the deadline.
async fn read_to_close(
    socket: &mut TcpStream,
    deadline: Instant,
) -> Result<Vec<u8>, TestCaseError> {
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Err(_) => {
                return Err(TestCaseError::fail(format!(
                    "the server neither answered nor closed the connection within {CASE_TIMEOUT:?}; it sent {} bytes",
                    received.len()
                )))
            }
            // Closed, or reset because our last bytes were never read: both end the case.
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(received),
            Ok(Ok(n)) => {
                received.extend_from_slice(&buf[..n]);
                prop_assert!(received.len() < 64 << 20, "the server keeps sending");
            }
        }
    }
}

/// Reads one backend message during the login.
async fn read_message(socket: &mut TcpStream, pending: &mut Vec<u8>) -> std::io::Result<Backend> {
    loop {
        if pending.len() >= 5 {
            let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
            if pending.len() > len {
                let message = Backend {
                    tag: pending[0],
                    body: pending[5..1 + len].to_vec(),
                };
                pending.drain(..1 + len);
                return Ok(message);
            }
        }
        let mut buf = [0u8; 4096];
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        pending.extend_from_slice(&buf[..n]);
    }
}

/// Connects and logs in as admin with SCRAM-SHA-256, by hand; returns at ReadyForQuery.
async fn login(port: u16) -> std::io::Result<TcpStream> {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut out = BytesMut::new();
    admin_startup().encode(&mut out);
    socket.write_all(&out).await?;
    let mut scram = ScramSha256::new(ADMIN_PASSWORD.as_bytes(), ChannelBinding::unsupported());
    let mut pending = Vec::new();
    loop {
        let m = read_message(&mut socket, &mut pending).await?;
        let code = m
            .body
            .get(..4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        let mut out = BytesMut::new();
        match (m.tag, code) {
            (b'R', Some(10)) => {
                let mut body = Vec::new();
                cstr(&mut body, SCRAM_SHA_256);
                body.extend((scram.message().len() as i32).to_be_bytes());
                body.extend(scram.message());
                Packet::Typed {
                    tag: b'p',
                    body,
                    len: Length::Exact,
                }
                .encode(&mut out);
            }
            (b'R', Some(11)) => {
                scram.update(&m.body[4..])?;
                let body = scram.message().to_vec();
                Packet::Typed {
                    tag: b'p',
                    body,
                    len: Length::Exact,
                }
                .encode(&mut out);
            }
            (b'R', Some(12)) => scram.finish(&m.body[4..])?,
            (b'Z', _) => return Ok(socket),
            (b'E', _) => {
                return Err(std::io::Error::other(format!(
                    "login refused: {:?}",
                    String::from_utf8_lossy(&m.body)
                )))
            }
            _ => {}
        }
        if !out.is_empty() {
            socket.write_all(&out).await?;
        }
    }
}

/// Sends `packets` (then, after a login, Sync and `select 1`), closes the write half and
/// checks how the server ended the connection.
async fn exchange(
    socket: &mut TcpStream,
    packets: &[Packet],
    logged_in: bool,
) -> Result<(), TestCaseError> {
    let mut out = BytesMut::new();
    for p in packets {
        p.encode(&mut out);
    }
    if logged_in {
        Packet::Typed {
            tag: b'S',
            body: Vec::new(),
            len: Length::Exact,
        }
        .encode(&mut out);
        let mut q = Vec::new();
        cstr(&mut q, "select 1");
        Packet::Typed {
            tag: b'Q',
            body: q,
            len: Length::Exact,
        }
        .encode(&mut out);
    }
    let deadline = Instant::now() + CASE_TIMEOUT;
    // The server may close first (a fatal error); what it did not read does not matter.
    let _ = socket.write_all(&out).await;
    let _ = socket.shutdown().await;
    let received = read_to_close(socket, deadline).await?;
    for m in backend_messages(&received) {
        if m.tag == b'E' {
            let code = error_code(&m.body);
            prop_assert!(
                code.is_some(),
                "an ErrorResponse without a SQLSTATE: {:?}",
                String::from_utf8_lossy(&m.body)
            );
            prop_assert!(
                code.as_deref() != Some("XX000"),
                "internal error (XX000) for a bad message: {:?}",
                String::from_utf8_lossy(&m.body)
            );
        }
    }
    Ok(())
}

/// After a case: the server runs and a normal client connects and queries.
async fn server_fine(server: &Fuzzed, input: &dyn std::fmt::Debug) -> Result<(), TestCaseError> {
    server.alive(input)?;
    let client = server.connect().await?;
    still_answers(&client).await
}

#[test]
fn startup_phase_garbage_never_breaks_the_server() {
    let server = Fuzzed::start();
    let rt = runtime();
    check(&mut runner(250), &pre_auth(), |packets| {
        rt.block_on(async {
            let mut socket = TcpStream::connect(("127.0.0.1", server.port()))
                .await
                .map_err(|e| TestCaseError::fail(format!("cannot connect: {e}")))?;
            let result = exchange(&mut socket, &packets, false).await;
            server.alive(&packets)?;
            result?;
            server_fine(&server, &packets).await
        })
    });
}

#[test]
fn messages_after_login_never_break_the_server() {
    let server = Fuzzed::start();
    let rt = runtime();
    rt.block_on(async {
        let client = server.connect().await.expect("connect");
        client
            .batch_execute(
                r#"create database "dfs://w" partitioned by VALUE(1..3);
                   create table "dfs://w"."t"(a INT, b SYMBOL) partitioned by a;"#,
            )
            .await
            .expect("set up");
    });
    check(&mut runner(250), &post_auth(), |packets| {
        rt.block_on(async {
            let mut socket = login(server.port())
                .await
                .map_err(|e| TestCaseError::fail(format!("cannot log in: {e}")))?;
            let result = exchange(&mut socket, &packets, true).await;
            server.alive(&packets)?;
            result?;
            server_fine(&server, &packets).await
        })
    });
}

/// Waits (without closing our side) until the server closes the connection; what it sent.
async fn closed_by_server(socket: &mut TcpStream) -> Vec<u8> {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Err(_) => {
                panic!("the server waited on a length it should have refused; sent {received:?}")
            }
            Ok(Ok(0)) | Ok(Err(_)) => return received,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn huge_length_fields_are_refused_at_once() {
    let server = super::common::TestServer::start();
    // A startup packet announcing 2 GiB: refused before anything more arrives.
    let mut socket = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    socket
        .write_all(&0x7fff_fff0u32.to_be_bytes())
        .await
        .unwrap();
    socket.write_all(&PROTOCOL_3_0.to_be_bytes()).await.unwrap();
    closed_by_server(&mut socket).await;
    // A Query announcing 2 GiB after a login: an ErrorResponse, or the connection closed.
    let mut socket = login(server.port()).await.unwrap();
    socket.write_all(b"Q").await.unwrap();
    socket
        .write_all(&0x7fff_fff0u32.to_be_bytes())
        .await
        .unwrap();
    socket.write_all(b"select 1").await.unwrap();
    let received = closed_by_server(&mut socket).await;
    for m in backend_messages(&received) {
        if m.tag == b'E' {
            assert_ne!(error_code(&m.body).as_deref(), Some("XX000"));
        }
    }
    let client = server.client().await;
    client.simple_query("select 1").await.unwrap();
}
