//! A single-node controller keeps its metadata across restarts, with and without snapshots,
//! and becomes leader again by itself.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use porpoise::catalog::{ColumnType, DatabaseDef, PartitionLevel};
use porpoise::controller::error::{ControllerError, MetadataError};
use porpoise::controller::metadata::{Command, CommandResult, Privilege, UserMeta};
use porpoise::controller::raft::state_machine::SNAPSHOT_FILE;
use porpoise::controller::raft::{RaftController, StoreError};
use porpoise::sqlstate::{ErrorCode, SqlState};

const NODE: u64 = 1;
const ADDR: &str = "127.0.0.1:8900";
const DEADLINE: Duration = Duration::from_secs(10);

async fn open(dir: &Path) -> RaftController {
    RaftController::open_single(dir, NODE, ADDR.to_string())
        .await
        .unwrap()
}

fn begin_txn() -> Command {
    Command::BeginTxn {
        coordinator: 2,
        now_ms: 1_700_000_000_000,
        ended: vec![],
        count: 1,
    }
}

fn create_db(name: &str) -> Command {
    Command::CreateDatabase {
        def: DatabaseDef {
            name: name.to_string(),
            id: 0,
            levels: vec![PartitionLevel::Value {
                key_type: ColumnType::Int,
                values: BTreeSet::new(),
            }],
            engine: "OLAP".to_string(),
            owner: "admin".to_string(),
            created_ms: 0,
            placement: Vec::new(),
        },
        if_not_exists: false,
    }
}

fn create_user(name: &str) -> Command {
    Command::CreateUser {
        user: UserMeta {
            name: name.to_string(),
            secret: porpoise::controller::secret::ScramSecret::from_salted_password(
                vec![1, 2, 3],
                4096,
                &[9; 32],
            ),
            is_admin: true,
            privileges: Default::default(),
        },
        if_not_exists: false,
    }
}

fn grant_read(user: &str, db: &str) -> Command {
    Command::Grant {
        user: user.to_string(),
        db: db.to_string(),
        privileges: BTreeSet::from([Privilege::Read]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_survives_restart_and_tids_continue() {
    let dir = tempfile::tempdir().unwrap();

    let c = open(dir.path()).await;
    assert!(c.is_leader());
    let mut rx = c.subscribe();
    assert_eq!(
        c.write(create_user("admin")).await.unwrap(),
        CommandResult::Ok
    );
    assert_eq!(
        c.write(create_db("dfs://testDB")).await.unwrap(),
        CommandResult::Ok
    );
    assert_eq!(
        c.write(grant_read("admin", "dfs://testDB")).await.unwrap(),
        CommandResult::Ok
    );
    assert_eq!(c.write(begin_txn()).await.unwrap(), CommandResult::Tid(1));
    assert_eq!(c.write(begin_txn()).await.unwrap(), CommandResult::Tid(2));
    // A refused command is committed too, and answers its error.
    assert_eq!(
        c.write(create_db("dfs://testDB")).await.unwrap(),
        CommandResult::Err(MetadataError::DatabaseExists("dfs://testDB".into()))
    );
    // `write` returns after the apply, so readers already see the result.
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().last_tid(), 2);
    assert_eq!(c.metadata().last_tid(), 2);
    c.shutdown().await.unwrap();

    let c = open(dir.path()).await;
    assert!(c.is_leader());
    let m = c.metadata();
    assert!(m.user("admin").is_some());
    assert!(m.database("dfs://testDB").is_some());
    assert_eq!(
        m.user("admin").unwrap().privileges.get("dfs://testDB"),
        Some(&BTreeSet::from([Privilege::Read]))
    );
    assert_eq!(m.last_tid(), 2);
    assert_eq!(m.txns().map(|(tid, _)| tid).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(c.write(begin_txn()).await.unwrap(), CommandResult::Tid(3));
    assert_eq!(
        c.write(create_db("dfs://other")).await.unwrap(),
        CommandResult::Ok
    );
    c.shutdown().await.unwrap();

    // A second restart replays the whole log again, including the entries written after the
    // first one.
    let c = open(dir.path()).await;
    assert_eq!(c.metadata().last_tid(), 3);
    assert_eq!(c.metadata().databases().count(), 2);
    assert_eq!(c.write(begin_txn()).await.unwrap(), CommandResult::Tid(4));
    c.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_snapshot_plus_later_log() {
    let dir = tempfile::tempdir().unwrap();

    let c = open(dir.path()).await;
    assert_eq!(
        c.write(create_db("dfs://testDB")).await.unwrap(),
        CommandResult::Ok
    );
    for tid in 1..=3 {
        assert_eq!(c.write(begin_txn()).await.unwrap(), CommandResult::Tid(tid));
    }
    let applied = c.raft().metrics().borrow().last_applied.unwrap().index;
    c.raft().trigger().snapshot().await.unwrap();
    // The snapshot is built, and the log it covers purged, in the background.
    let m = c
        .raft()
        .wait(Some(DEADLINE))
        .metrics(
            |m| {
                m.snapshot.is_some_and(|s| s.index >= applied)
                    && m.purged.is_some_and(|p| p.index >= applied)
            },
            "snapshot built and log purged",
        )
        .await
        .unwrap();
    assert!(dir.path().join(SNAPSHOT_FILE).exists());
    let snapshot_index = m.snapshot.unwrap().index;

    // Writes after the snapshot live only in the log.
    assert_eq!(c.write(begin_txn()).await.unwrap(), CommandResult::Tid(4));
    assert_eq!(
        c.write(create_user("admin")).await.unwrap(),
        CommandResult::Ok
    );
    c.shutdown().await.unwrap();

    let c = open(dir.path()).await;
    assert!(c.is_leader());
    let m = c.metadata();
    assert!(m.database("dfs://testDB").is_some());
    assert!(m.user("admin").is_some());
    assert_eq!(m.last_tid(), 4);
    let metrics = c.raft().metrics().borrow().clone();
    assert_eq!(metrics.snapshot.map(|s| s.index), Some(snapshot_index));
    assert!(metrics.purged.is_some_and(|p| p.index >= snapshot_index));
    assert_eq!(c.write(begin_txn()).await.unwrap(), CommandResult::Tid(5));
    c.shutdown().await.unwrap();

    // Snapshot only: everything in the log is covered by a new snapshot and purged.
    let c = open(dir.path()).await;
    let applied = c.raft().metrics().borrow().last_applied.unwrap().index;
    c.raft().trigger().snapshot().await.unwrap();
    c.raft()
        .wait(Some(DEADLINE))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index >= applied),
            "log purged",
        )
        .await
        .unwrap();
    c.shutdown().await.unwrap();
    let c = open(dir.path()).await;
    assert_eq!(c.metadata().last_tid(), 5);
    assert_eq!(c.write(begin_txn()).await.unwrap(), CommandResult::Tid(6));
    c.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_node_id_is_refused_and_releases_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path()).await;
    assert_eq!(c.write(begin_txn()).await.unwrap(), CommandResult::Tid(1));
    c.shutdown().await.unwrap();

    let err = RaftController::open_single(dir.path(), 7, ADDR.to_string())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            ControllerError::Store(StoreError::NotMember { node_id: 7, .. })
        ),
        "{err}"
    );
    assert_eq!(err.sqlstate(), SqlState::CONFIG_FILE_ERROR);
    assert!(!err.retryable());

    // The failed open released the log store: the right node id opens it.
    let c = open(dir.path()).await;
    assert_eq!(c.write(begin_txn()).await.unwrap(), CommandResult::Tid(2));
    c.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_snapshot_is_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SNAPSHOT_FILE), b"{not json").unwrap();
    let err = RaftController::open_single(dir.path(), NODE, ADDR.to_string())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            ControllerError::Store(StoreError::CorruptSnapshot { .. })
        ),
        "{err}"
    );
    assert_eq!(err.sqlstate(), SqlState::DATA_CORRUPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_after_shutdown_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path()).await;
    c.shutdown().await.unwrap();
    assert!(!c.is_leader());
    let err = c.write(begin_txn()).await.unwrap_err();
    assert!(matches!(err, ControllerError::Fatal { .. }), "{err}");
    assert_eq!(err.sqlstate(), SqlState::ADMIN_SHUTDOWN);
}
