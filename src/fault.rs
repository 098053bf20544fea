//! Deterministic crash points for tests. A process started with
//! `PORPOISE_CRASH_AT=<point>` aborts (as `kill -9` would stop it, with no cleanup) the first
//! time it reaches that point, so tests can crash a server exactly between two steps of a
//! protocol instead of hoping a timed `kill -9` lands there. Without the variable a crash point
//! costs one cached lookup.
//!
//! Points: `txn-prepared` (a transaction's files are prepared, the controller has not committed
//! it), `txn-committed` (committed through raft, not yet published).

use std::sync::OnceLock;

/// Environment variable naming the crash point.
pub const CRASH_AT: &str = "PORPOISE_CRASH_AT";

/// Aborts the process if `point` is the configured crash point.
pub fn crash_point(point: &str) {
    static CONFIGURED: OnceLock<Option<String>> = OnceLock::new();
    let configured = CONFIGURED.get_or_init(|| std::env::var(CRASH_AT).ok());
    if configured.as_deref() == Some(point) {
        eprintln!("porpoise: crash point {point} reached, aborting");
        std::process::abort();
    }
}
