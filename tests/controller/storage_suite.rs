//! openraft's storage conformance suite, run on fresh temp directories.

use openraft::testing::{StoreBuilder, Suite};
use porpoise::controller::raft::log_store::LogStore;
use porpoise::controller::raft::state_machine::StateMachineStore;
use porpoise::controller::raft::types::{StorageError, TypeConfig};
use tempfile::TempDir;

/// Builds a log store and a state machine over one new temp dir, removed when the guard drops.
struct RedbStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for RedbStoreBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().unwrap();
        let log = LogStore::open(dir.path()).unwrap();
        let sm = StateMachineStore::open(dir.path()).unwrap();
        Ok((dir, log, sm))
    }
}

// `Suite::test_all` runs each case on its own tokio runtime, so this is a plain test.
#[test]
fn openraft_storage_suite() {
    Suite::test_all(RedbStoreBuilder).unwrap();
}
