//! Old data stays readable: the fixtures under `tests/fixtures/` were written by earlier builds
//! (how, and how to add one, is in `tests/fixtures/README.md`), and this build must read them
//! as a user saw them. Files of a format newer than this build knows are refused with a clear
//! error instead of being misread.
//!
//! `v1/` holds a standalone server's home with every persisted format at version 1: the
//! controller's raft log and snapshot, and the data node's file index and data files.

#[path = "../common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openraft::storage::RaftLogStorage;
use porpoise::controller::error::ControllerError;
use porpoise::controller::metadata::FORMAT_VERSION;
use porpoise::controller::raft::log_store::{LogStore, LOG_FILE, LOG_FORMAT_VERSION};
use porpoise::controller::raft::state_machine::{
    StateMachineStore, SNAPSHOT_FILE, SNAPSHOT_FORMAT_VERSION,
};
use porpoise::controller::raft::{RaftController, StoreError};
use porpoise::sqlstate::{ErrorCode, SqlState};
use porpoise::storage::index::INDEX_FORMAT_VERSION;
use porpoise::storage::{FileIndex, StorageError};

use common::{copy_tree, first_value, parquet_file_names, TestServer};

/// The database, table and user of the fixture, and the password of that user.
const DB: &str = "dfs://fixture";
const TABLE: &str = "trades";
const READER: &str = "fixture_reader";
const READER_PASSWORD: &str = "reader_pw";

/// Rows written before the controller's snapshot, then after it (as `k, sym, px, d`).
const ROWS_BEFORE_SNAPSHOT: &str =
    "(1, 'AAPL', 10.5, '2024-01-02'), (2, 'MSFT', 20.25, '2024-01-03'), \
                                    (3, 'IBM', 30.0, '2024-01-04')";
const ROWS_AFTER_SNAPSHOT: &str =
    "(1, 'AAPL', 11.5, '2024-01-05'), (2, 'ORCL', 22.0, '2024-01-06')";

/// The table's rows as `select` returns them, ordered by `k, px`.
const EXPECTED_ROWS: &[(i32, &str, f64, &str)] = &[
    (1, "AAPL", 10.5, "2024-01-02"),
    (1, "AAPL", 11.5, "2024-01-05"),
    (2, "MSFT", 20.25, "2024-01-03"),
    (2, "ORCL", 22.0, "2024-01-06"),
    (3, "IBM", 30.0, "2024-01-04"),
];

/// The address the controller is opened with here; a single controller's stored membership
/// takes whatever address it starts on (as a standalone server does on every start).
const ADDR: &str = "127.0.0.1:8902";

fn fixture(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(version)
}

/// A fresh copy of the v1 fixture.
fn v1_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("v1"), dir.path());
    dir
}

#[tokio::test]
async fn a_server_started_on_the_v1_fixture_serves_its_database_table_user_and_rows() {
    let mut server = TestServer::start_from_copy(&fixture("v1"));
    let admin = server.client().await;

    let rows = admin
        .query(
            &format!(r#"select k, sym, px, d from "{DB}"."{TABLE}" order by k, px"#),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let rows: Vec<(i32, String, f64, String)> = rows
        .iter()
        .map(|r| {
            let day: chrono::NaiveDate = r.get(3);
            (r.get(0), r.get(1), r.get(2), day.to_string())
        })
        .collect();
    let expected: Vec<(i32, String, f64, String)> = EXPECTED_ROWS
        .iter()
        .map(|(k, s, p, d)| (*k, s.to_string(), *p, d.to_string()))
        .collect();
    assert_eq!(rows, expected);

    // The user made after the snapshot logs in with its password and keeps its grant: it
    // reads, and may not write.
    let reader = server
        .client_as(READER, READER_PASSWORD)
        .await
        .expect("the fixture's user logs in");
    let count = first_value(
        &reader,
        &format!(r#"select count(*) from "{DB}"."{TABLE}""#),
    )
    .await;
    assert_eq!(count, EXPECTED_ROWS.len().to_string());
    let err = reader
        .batch_execute(&format!(
            r#"insert into "{DB}"."{TABLE}" values (3, 'X', 1.0, '2024-01-07')"#
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err:?}");

    // The old state takes new writes, which survive a restart with it.
    admin
        .batch_execute(&format!(
            r#"insert into "{DB}"."{TABLE}" values (3, 'NEW', 99.0, '2024-01-08')"#
        ))
        .await
        .unwrap();
    server.restart();
    let admin = server.client().await;
    let count = first_value(&admin, &format!(r#"select count(*) from "{DB}"."{TABLE}""#)).await;
    assert_eq!(count, (EXPECTED_ROWS.len() + 1).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v1_controller_state_is_its_snapshot_plus_the_log_after_it() {
    let dir = v1_copy();
    let controller = dir.path().join("controller");

    // The fixture covers both halves: the snapshot has the database but not the user made
    // after it, whose command is only in the log.
    let sm = StateMachineStore::open(&controller).unwrap();
    let snapshot = sm.metadata();
    assert!(snapshot.database(DB).is_some());
    assert!(snapshot.user(READER).is_none());
    drop(sm);
    let mut log = LogStore::open(&controller).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert!(
        state.last_purged_log_id.is_some(),
        "the snapshot covers a purged log prefix"
    );
    assert!(
        state.last_log_id > state.last_purged_log_id,
        "entries follow the snapshot"
    );
    drop(log);

    let c = RaftController::open_single(&controller, 1, ADDR.to_string())
        .await
        .unwrap();
    let m = c.metadata();
    let db = m.database(DB).unwrap();
    assert!(db.tables.contains_key(TABLE));
    assert!(m.user(READER).is_some());
    assert!(m.user(common::ADMIN_USER).is_some());
    c.shutdown().await.unwrap();
}

#[test]
fn the_v1_file_index_lists_the_data_files() {
    let dir = v1_copy();
    let home = dir.path().join("datanode");
    let on_disk = {
        let mut names = parquet_file_names(&home.join("data"));
        names.sort();
        names
    };
    assert!(!on_disk.is_empty());
    let index = FileIndex::open(&home).unwrap();
    // Every file on disk is published (none is garbage), with its rows.
    let tables: Vec<_> = on_disk_tables(&home.join("data"));
    let mut listed = Vec::new();
    let mut rows = 0;
    for key in tables {
        let files = index.snapshot(key);
        rows += files.rows();
        for f in files.files() {
            assert!(
                f.path.is_file(),
                "{} is listed but missing",
                f.path.display()
            );
            listed.push(f.record.name.clone());
        }
    }
    listed.sort();
    assert_eq!(listed, on_disk);
    assert_eq!(rows, EXPECTED_ROWS.len() as u64);
    assert!(index.prepared().unwrap().is_empty());
    // Opening it changed nothing that matters: it opens again to the same files.
    drop(index);
    assert_eq!(
        FileIndex::open(&home).unwrap().prepared_tids(),
        Vec::<u64>::new()
    );
}

/// The table generations of a data directory: `data/<table id>.<generation>/`.
fn on_disk_tables(data: &Path) -> Vec<(u32, u64)> {
    std::fs::read_dir(data)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            let (id, generation) = name.split_once('.').expect("<table id>.<generation>");
            (id.parse().unwrap(), generation.parse().unwrap())
        })
        .collect()
}

/// Rewrites `snapshot.json` in `controller` through `edit`.
fn edit_snapshot(controller: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = controller.join(SNAPSHOT_FILE);
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
}

async fn open_controller(controller: &Path) -> Result<RaftController, ControllerError> {
    RaftController::open_single(controller, 1, ADDR.to_string()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_snapshot_of_a_newer_format_is_refused() {
    let dir = v1_copy();
    let controller = dir.path().join("controller");
    edit_snapshot(&controller, |s| {
        s["format_version"] = (SNAPSHOT_FORMAT_VERSION + 1).into()
    });
    let err = open_controller(&controller).await.err().expect("refused");
    assert!(
        matches!(err, ControllerError::Store(StoreError::UnsupportedFormat { what: "controller snapshot", found, .. })
            if found == SNAPSHOT_FORMAT_VERSION + 1),
        "{err}"
    );
    assert!(err.to_string().contains("has format version 2"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_metadata_of_a_newer_format_is_refused_not_misread() {
    let dir = v1_copy();
    let controller = dir.path().join("controller");
    // A later build's metadata, with a field this build does not know.
    edit_snapshot(&controller, |s| {
        s["metadata"]["format_version"] = (FORMAT_VERSION + 1).into();
        s["metadata"]["a_later_field"] = "x".into();
    });
    let err = open_controller(&controller).await.err().expect("refused");
    assert!(
        matches!(err, ControllerError::Store(StoreError::UnsupportedFormat { found, supported: FORMAT_VERSION, .. })
            if found == FORMAT_VERSION + 1),
        "{err}"
    );
    assert!(err.to_string().contains("controller metadata"), "{err}");
    assert_eq!(err.sqlstate(), SqlState::DATA_CORRUPTED);

    // Wherever else metadata is decoded (a data node's copy), the same version is refused.
    let snapshot: serde_json::Value =
        serde_json::from_slice(&std::fs::read(controller.join(SNAPSHOT_FILE)).unwrap()).unwrap();
    let err = serde_json::from_value::<porpoise::controller::metadata::Metadata>(
        snapshot["metadata"].clone(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("format version 2"), "{err}");

    // Metadata written before the version was recorded reads as version 1.
    edit_snapshot(&controller, |s| {
        let metadata = s["metadata"].as_object_mut().unwrap();
        metadata.remove("format_version");
        metadata.remove("a_later_field");
    });
    let c = open_controller(&controller).await.unwrap();
    assert!(c.metadata().user(READER).is_some());
    c.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raft_log_of_a_newer_format_is_refused() {
    let dir = v1_copy();
    let controller = dir.path().join("controller");
    {
        let db = redb::Database::open(controller.join(LOG_FILE)).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
            .unwrap()
            .insert(
                "format_version",
                serde_json::to_vec(&(LOG_FORMAT_VERSION + 1))
                    .unwrap()
                    .as_slice(),
            )
            .unwrap();
        w.commit().unwrap();
    }
    let err = open_controller(&controller).await.err().expect("refused");
    assert!(
        matches!(err, ControllerError::Store(StoreError::UnsupportedFormat { what: "raft log", found, .. })
            if found == LOG_FORMAT_VERSION + 1),
        "{err}"
    );
}

#[test]
fn a_file_index_of_a_newer_format_is_refused() {
    let dir = v1_copy();
    let home = dir.path().join("datanode");
    let meta = redb::TableDefinition::<&str, u32>::new("meta");
    {
        // The v1 fixture records its version as this build writes it.
        let db = redb::Database::open(home.join("index.redb")).unwrap();
        let r = db.begin_read().unwrap();
        let stored = r.open_table(meta).unwrap().get("format_version").unwrap();
        assert_eq!(stored.map(|v| v.value()), Some(1));
    }
    {
        let db = redb::Database::open(home.join("index.redb")).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(meta)
            .unwrap()
            .insert("format_version", INDEX_FORMAT_VERSION + 1)
            .unwrap();
        w.commit().unwrap();
    }
    let err = FileIndex::open(&home).unwrap_err();
    assert!(
        matches!(err, StorageError::UnsupportedFormat { found, .. } if found == INDEX_FORMAT_VERSION + 1),
        "{err}"
    );
}

/// Writes `tests/fixtures/<PORPOISE_FIXTURE>` (default `v1`) with this build: a standalone
/// server's home after a database, a table, rows, a controller snapshot, a user with a grant
/// and more rows. Run by hand (see `tests/fixtures/README.md`); it refuses to overwrite a
/// fixture, since old fixtures are what later builds are checked against.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a fixture into the source tree; run by hand, see tests/fixtures/README.md"]
async fn write_fixture() {
    use porpoise::datanode::DataNodeOptions;
    use porpoise::standalone::{Standalone, StandaloneOptions};

    let name = std::env::var("PORPOISE_FIXTURE").unwrap_or_else(|_| "v1".into());
    let dest = fixture(&name);
    assert!(
        !dest.exists(),
        "{} exists; remove it first if you really mean to replace it",
        dest.display()
    );
    let home = tempfile::tempdir().unwrap();
    let options = StandaloneOptions {
        home: home.path().to_path_buf(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        datanode: DataNodeOptions {
            replication_dir: home.path().join("clusterReplication"),
            // Nothing changes the files behind the writes' backs.
            compaction_min_files: usize::MAX,
            ..DataNodeOptions::default()
        },
        pgwire: Default::default(),
        protected_mode: true,
    };
    let server = Standalone::start(options).await.unwrap();
    let controller = server.controller.clone();
    let port = server.addr.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    let admin = common::connect(&common::url(
        port,
        common::ADMIN_USER,
        common::ADMIN_PASSWORD,
    ))
    .await
    .unwrap();
    admin
        .batch_execute(&format!(
            r#"create database "{DB}" partitioned by VALUE(1..3);
               create table "{DB}"."{TABLE}"(k INT, sym SYMBOL, px DOUBLE, d DATE) partitioned by k;
               insert into "{DB}"."{TABLE}" values {ROWS_BEFORE_SNAPSHOT};"#
        ))
        .await
        .unwrap();

    let applied = controller
        .raft()
        .metrics()
        .borrow()
        .last_applied
        .unwrap()
        .index;
    controller.raft().trigger().snapshot().await.unwrap();
    controller
        .raft()
        .wait(Some(Duration::from_secs(30)))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index >= applied),
            "snapshot built and the log it covers purged",
        )
        .await
        .unwrap();

    admin
        .batch_execute(&format!(
            r#"create user {READER} with password '{READER_PASSWORD}';
               grant read on database "{DB}" to {READER};
               insert into "{DB}"."{TABLE}" values {ROWS_AFTER_SNAPSHOT};"#
        ))
        .await
        .unwrap();
    drop(admin);
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    drop(controller);

    // The formats only: no certificates or keys (a server makes its own on start).
    for file in [
        Path::new("controller").join(LOG_FILE),
        Path::new("controller").join(SNAPSHOT_FILE),
        Path::new("datanode/index.redb").to_path_buf(),
    ] {
        std::fs::create_dir_all(dest.join(file.parent().unwrap())).unwrap();
        std::fs::copy(home.path().join(&file), dest.join(&file)).unwrap();
    }
    copy_tree(
        &home.path().join("datanode/data"),
        &dest.join("datanode/data"),
    );
    // redb files grow in large steps; compacting the copies keeps the fixture small.
    for file in ["controller/raft-log.redb", "datanode/index.redb"] {
        let mut db = redb::Database::open(dest.join(file)).unwrap();
        db.compact().unwrap();
    }
    eprintln!("wrote {}", dest.display());
}
