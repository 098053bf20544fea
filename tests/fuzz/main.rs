//! Property-based fuzzing of the inputs a stranger controls: SQL text ([`sql`]), pgwire
//! messages ([`wire`]), COPY data ([`copy`]) and configuration files ([`config`]).
//!
//! The properties that need a server start one real `porpoise standalone` process per property
//! (not per case) and check after every case that the process still runs and still answers.
//! Each case runs under a deadline, so a hang fails the case instead of the whole run.
//!
//! Case counts are sized so the binary finishes in a few minutes in the debug profile; set
//! `PROPTEST_CASES` for a long run (`PROPTEST_CASES=10000 cargo test --release --test fuzz`).
//! A failing case is printed by proptest (shrunk where the server survived it); a crash also
//! prints the exact input that crashed the server and the server's log.

#[path = "../common/mod.rs"]
mod common;

mod config;
mod copy;
mod regressions;
mod sql;
mod wire;

use std::cell::RefCell;
use std::time::Duration;

use common::TestServer;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// How long one case may take against the server before it counts as a hang.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// A proptest configuration with `default_cases` cases unless `PROPTEST_CASES` says otherwise.
/// Failures are not persisted: the regressions they find become plain tests.
pub fn runner_config(default_cases: u32) -> Config {
    let mut config = Config {
        failure_persistence: None,
        // Shrinking against a server costs a round trip per step; a bounded search still
        // finds a short input.
        max_shrink_iters: 512,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config
}

/// A test runner with [`runner_config`].
pub fn runner(default_cases: u32) -> TestRunner {
    TestRunner::new(runner_config(default_cases))
}

/// The runtime a server property drives its clients on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build a tokio runtime")
}

/// A server shared by the cases of one property.
pub struct Fuzzed {
    server: RefCell<TestServer>,
    /// Why the server is gone, with the input that did it: every later case (the shrinking
    /// too) fails with this, so the report names the input that crashed it.
    crash: RefCell<Option<String>>,
}

/// `input`'s debug form, cut to a readable length.
pub fn shown(input: &dyn std::fmt::Debug) -> String {
    let text = format!("{input:?}");
    if text.len() <= 600 {
        return text;
    }
    let head: String = text.chars().take(500).collect();
    format!("{head}... ({} bytes)", text.len())
}

impl Fuzzed {
    pub fn start() -> Self {
        Fuzzed {
            server: RefCell::new(TestServer::start()),
            crash: RefCell::new(None),
        }
    }

    pub fn port(&self) -> u16 {
        self.server.borrow().port()
    }

    pub fn url(&self) -> String {
        self.server.borrow().url()
    }

    /// Fails the case if the server process has exited, with the input that did it and the
    /// end of the server's log.
    pub fn alive(&self, input: &dyn std::fmt::Debug) -> Result<(), TestCaseError> {
        if let Some(crash) = self.crash.borrow().as_ref() {
            return Err(TestCaseError::fail(crash.clone()));
        }
        let mut server = self.server.borrow_mut();
        if let Some(status) = server.exit_status() {
            let log = server.log();
            let tail: String = log
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            let crash = format!("the server exited ({status}) on input {}", shown(input));
            eprintln!("{crash}\n--- log tail ---\n{tail}");
            *self.crash.borrow_mut() = Some(crash.clone());
            return Err(TestCaseError::fail(crash));
        }
        Ok(())
    }

    /// A new admin connection, or a failed case.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, TestCaseError> {
        let url = self.url();
        match tokio::time::timeout(CASE_TIMEOUT, common::connect(&url)).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(TestCaseError::fail(format!("cannot connect: {e}"))),
            Err(_) => Err(TestCaseError::fail("connecting timed out")),
        }
    }
}

/// `select 1` on `client` answers 1 within the deadline (after a ROLLBACK: a case may have
/// left a transaction block open, or failed one, which then takes nothing but its end).
pub async fn still_answers(client: &tokio_postgres::Client) -> Result<(), TestCaseError> {
    let rows = tokio::time::timeout(CASE_TIMEOUT, client.simple_query("rollback; select 1"))
        .await
        .map_err(|_| TestCaseError::fail("`select 1` timed out afterwards"))?
        .map_err(|e| TestCaseError::fail(format!("`select 1` failed afterwards: {e:?}")))?;
    let one = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
        _ => None,
    });
    if one.as_deref() == Some("1") {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!(
            "`select 1` answered {rows:?} afterwards"
        )))
    }
}

/// Runs a property; on failure panics with proptest's report.
pub fn check<S: proptest::strategy::Strategy>(
    runner: &mut TestRunner,
    strategy: &S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    if let Err(e) = runner.run(strategy, test) {
        panic!("{e}");
    }
}
