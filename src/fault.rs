//! Deterministic crash points for tests. A process started with
//! `PORPOISE_CRASH_AT=<point>` aborts (as `kill -9` would stop it, with no cleanup) the first
//! time it reaches that point, so tests can crash a server exactly between two steps of a
//! protocol instead of hoping a timed `kill -9` lands there. Without the variable a crash point
//! costs one cached lookup.
//!
//! Points: `txn-prepared` (a transaction's files are prepared, the controller has not committed
//! it), `txn-committed` (committed through raft, not yet published), `participant-prepared`,
//! `ctl-commit-received` (a controller received a transaction's commit and has not written it
//! to its log), `ctl-commit-applied` (the commit is in its log and applied, not yet answered).
//!
//! Delay points stretch a window instead: with `PORPOISE_DELAY_AT=<point>:<ms>` the process
//! waits that long each time it passes the point (and says so on stderr). Points:
//! `txn-prepared` (as the crash point), `txn-published-locally` (the
//! coordinator published its own part of a committed transaction, the other participants'
//! parts not yet), `task-data-async-persist` (a transaction committed with asynchronous task
//! data persistence, its `<tid>.task` not yet written), `task-data-served` (a master data node
//! was asked for a task's data and has not sent it yet), `file-served` (the same for one of
//! its data files), `metadata-received` (a data node received a metadata change from the
//! controller and has not applied it to its copy yet).

use std::sync::OnceLock;

/// Environment variable naming the crash point.
pub const CRASH_AT: &str = "PORPOISE_CRASH_AT";

/// Environment variable naming a delay point and its delay: `<point>:<milliseconds>`.
pub const DELAY_AT: &str = "PORPOISE_DELAY_AT";

/// Aborts the process if `point` is the configured crash point.
pub fn crash_point(point: &str) {
    static CONFIGURED: OnceLock<Option<String>> = OnceLock::new();
    let configured = CONFIGURED.get_or_init(|| std::env::var(CRASH_AT).ok());
    if configured.as_deref() == Some(point) {
        eprintln!("porpoise: crash point {point} reached, aborting");
        std::process::abort();
    }
}

/// Waits at `point` if it is the configured delay point.
pub async fn delay_point(point: &str) {
    static CONFIGURED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    let configured = CONFIGURED.get_or_init(|| {
        let v = std::env::var(DELAY_AT).ok()?;
        let (p, ms) = v.rsplit_once(':')?;
        Some((p.to_string(), ms.parse().ok()?))
    });
    if let Some((p, ms)) = configured {
        if p == point {
            eprintln!("porpoise: delay point {point} reached, waiting {ms} ms");
            tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
        }
    }
}
