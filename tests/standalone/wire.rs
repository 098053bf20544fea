//! A raw pgwire client for what drivers act on but do not show: the transaction status of
//! ReadyForQuery, how COPY TO frames its rows, PortalSuspended.

use std::time::Duration;

use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{ADMIN_PASSWORD, ADMIN_USER};

/// How long the server may take to answer one exchange.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// One backend message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// The SQLSTATE of an ErrorResponse.
    pub fn sqlstate(&self) -> Option<String> {
        let mut rest = &self.body[..];
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

    /// The tag of a CommandComplete.
    pub fn command(&self) -> String {
        String::from_utf8_lossy(self.body.strip_suffix(&[0]).unwrap_or(&self.body)).into_owned()
    }
}

/// A logged-in connection.
pub struct Wire {
    socket: TcpStream,
    pending: Vec<u8>,
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn typed(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

impl Wire {
    /// Connects to 127.0.0.1:`port` and logs in as the admin with SCRAM-SHA-256.
    pub async fn login(port: u16) -> Wire {
        let socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut wire = Wire {
            socket,
            pending: Vec::new(),
        };
        let mut body = 196_608u32.to_be_bytes().to_vec();
        for (k, v) in [("user", ADMIN_USER), ("database", "porpoise")] {
            cstr(&mut body, k);
            cstr(&mut body, v);
        }
        body.push(0);
        let mut startup = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        startup.extend_from_slice(&body);
        wire.write(&startup).await;
        let mut scram = ScramSha256::new(ADMIN_PASSWORD.as_bytes(), ChannelBinding::unsupported());
        loop {
            let m = wire.read().await;
            let code = m
                .body
                .get(..4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            match (m.tag, code) {
                (b'R', Some(10)) => {
                    let mut body = Vec::new();
                    cstr(&mut body, SCRAM_SHA_256);
                    body.extend((scram.message().len() as i32).to_be_bytes());
                    body.extend(scram.message());
                    wire.write(&typed(b'p', &body)).await;
                }
                (b'R', Some(11)) => {
                    scram.update(&m.body[4..]).unwrap();
                    let body = scram.message().to_vec();
                    wire.write(&typed(b'p', &body)).await;
                }
                (b'R', Some(12)) => scram.finish(&m.body[4..]).unwrap(),
                (b'Z', _) => return wire,
                (b'E', _) => panic!("login refused: {:?}", String::from_utf8_lossy(&m.body)),
                _ => {}
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.unwrap();
    }

    /// The next message, within [`ANSWER_TIMEOUT`].
    pub async fn read(&mut self) -> Msg {
        loop {
            if self.pending.len() >= 5 {
                let p = &self.pending;
                let len = u32::from_be_bytes([p[1], p[2], p[3], p[4]]) as usize;
                if p.len() > len {
                    let m = Msg {
                        tag: p[0],
                        body: p[5..1 + len].to_vec(),
                    };
                    self.pending.drain(..1 + len);
                    return m;
                }
            }
            let mut buf = vec![0u8; 64 * 1024];
            let n = tokio::time::timeout(ANSWER_TIMEOUT, self.socket.read(&mut buf))
                .await
                .expect("the server did not answer in time")
                .unwrap();
            assert!(n > 0, "the server closed the connection");
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// Messages up to and including the next ReadyForQuery; and its transaction status.
    pub async fn until_ready(&mut self) -> (Vec<Msg>, char) {
        let mut out = Vec::new();
        loop {
            let m = self.read().await;
            if m.tag == b'Z' {
                return (out, m.body[0] as char);
            }
            out.push(m);
        }
    }

    /// A simple Query.
    pub async fn simple(&mut self, sql: &str) -> (Vec<Msg>, char) {
        let mut body = Vec::new();
        cstr(&mut body, sql);
        self.write(&typed(b'Q', &body)).await;
        self.until_ready().await
    }

    /// Parse, Bind (no parameters, text results) and Execute of the unnamed statement into
    /// portal `portal`, with `max_rows` (0: all), then Sync.
    pub async fn extended(&mut self, sql: &str, portal: &str, max_rows: i32) -> (Vec<Msg>, char) {
        let mut out = Vec::new();
        let mut parse = Vec::new();
        cstr(&mut parse, "");
        cstr(&mut parse, sql);
        parse.extend_from_slice(&0i16.to_be_bytes());
        out.extend(typed(b'P', &parse));
        let mut bind = Vec::new();
        cstr(&mut bind, portal);
        cstr(&mut bind, "");
        bind.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        out.extend(typed(b'B', &bind));
        out.extend(self.execute_message(portal, max_rows));
        out.extend(typed(b'S', &[]));
        self.write(&out).await;
        self.until_ready().await
    }

    fn execute_message(&self, portal: &str, max_rows: i32) -> Vec<u8> {
        let mut execute = Vec::new();
        cstr(&mut execute, portal);
        execute.extend_from_slice(&max_rows.to_be_bytes());
        typed(b'E', &execute)
    }

    /// Describe of a portal, then Sync.
    pub async fn describe_portal(&mut self, portal: &str) -> (Vec<Msg>, char) {
        let mut body = vec![b'P'];
        cstr(&mut body, portal);
        let mut out = typed(b'D', &body);
        out.extend(typed(b'S', &[]));
        self.write(&out).await;
        self.until_ready().await
    }

    /// Execute of an existing portal, then Sync.
    pub async fn execute(&mut self, portal: &str, max_rows: i32) -> (Vec<Msg>, char) {
        let mut out = self.execute_message(portal, max_rows);
        out.extend(typed(b'S', &[]));
        self.write(&out).await;
        self.until_ready().await
    }
}

/// The tags of `messages`, as characters (`"TDDC"`).
pub fn tags(messages: &[Msg]) -> String {
    messages.iter().map(|m| m.tag as char).collect()
}
