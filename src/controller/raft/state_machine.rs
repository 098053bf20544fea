//! The controller's raft state machine: the cluster [`Metadata`] in memory, the last applied
//! log id and the last membership, persisted only as snapshots in `<dir>/snapshot.json`.
//!
//! Invariants:
//! - Entries are applied in log order through [`Metadata::apply`], which is deterministic, so
//!   every member that applies the same log holds the same metadata. Blank and membership
//!   entries leave the metadata alone and answer [`CommandResult::default()`].
//! - The state after a restart is the snapshot plus the committed entries after it: openraft
//!   re-applies them at start-up (the log store persists the committed log id for that).
//! - `snapshot.json` is replaced atomically (write `snapshot.json.tmp`, fsync, rename, fsync the
//!   directory) and never goes backwards: a snapshot older than the one on disk is not written,
//!   so a slow snapshot build cannot overwrite a newer installed snapshot whose covered log
//!   entries were already purged.
//! - Readers get the metadata as a [`MetadataView`] (an `Arc<Metadata>`) through a [`watch`]
//!   channel, published after every `apply` call that changed it. The state machine copies the
//!   metadata on write (`Arc::make_mut`, once per applied batch), so a reader's view is an
//!   immutable snapshot.
//!
//! Snapshot format, version [`SNAPSHOT_FORMAT_VERSION`] (= 1), JSON:
//! `{"format_version":1, "snapshot_id":"…", "last_applied":LogId|null,
//!   "last_membership":StoredMembership, "metadata":Metadata}`.
//! The snapshot data openraft sends to followers is exactly these bytes. The metadata inside has
//! its own version ([`crate::controller::metadata::FORMAT_VERSION`]). A snapshot of another
//! file version, or whose metadata is newer than this build reads, is refused (at open, and when
//! installed from the leader) with [`StoreError::UnsupportedFormat`], never misread.

use std::fs::{self, File};
use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use super::StoreError;
use crate::controller::feed::Feed;
use crate::controller::metadata::{
    CommandResult, Metadata, FORMAT_VERSION as METADATA_FORMAT_VERSION,
};
use crate::controller::view::MetadataView;

/// File name of the snapshot inside the controller directory.
pub const SNAPSHOT_FILE: &str = "snapshot.json";

/// The snapshot being written; renamed over [`SNAPSHOT_FILE`] once it is durable.
const SNAPSHOT_TMP: &str = "snapshot.json.tmp";

/// Version of the snapshot format written by this build.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

/// Serialises snapshot writes of every state machine in the process. Writes are rare (one per
/// `snapshot_policy` logs), and one lock makes the "never goes backwards" check race-free even
/// across two instances over the same directory (a reopen while the old instance's snapshot
/// build is still running).
static SNAPSHOT_WRITE: Mutex<()> = Mutex::new(());

/// The snapshot file. `M` is `&Metadata` when writing and `Metadata` when reading.
#[derive(Serialize, Deserialize)]
struct SnapshotFile<M> {
    format_version: u32,
    snapshot_id: String,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    metadata: M,
}

/// What the "never goes backwards" check needs from the snapshot on disk.
#[derive(Deserialize)]
struct SnapshotHeader {
    last_applied: Option<LogId>,
}

/// The raft state machine over the cluster metadata.
pub struct StateMachineStore {
    dir: PathBuf,
    metadata: Arc<Metadata>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    tx: watch::Sender<MetadataView>,
    feed: Arc<Mutex<Feed>>,
}

impl StateMachineStore {
    /// Opens the state machine stored in `dir`: loads `snapshot.json` if there is one, else
    /// starts from empty metadata. Blocking: call it from a blocking context.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let tmp = dir.join(SNAPSHOT_TMP);
        match fs::remove_file(&tmp) {
            Ok(()) => tracing::info!(path = %tmp.display(), "removed an unfinished snapshot"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::SnapshotIo { path: tmp, source }),
        }
        let path = dir.join(SNAPSHOT_FILE);
        let (metadata, last_applied, last_membership) = match read_snapshot_file(&path)? {
            Some((file, _)) => {
                tracing::info!(
                    path = %path.display(),
                    last_applied = ?file.last_applied,
                    "loaded controller snapshot"
                );
                (file.metadata, file.last_applied, file.last_membership)
            }
            None => (Metadata::default(), None, StoredMembership::default()),
        };
        let metadata = Arc::new(metadata);
        let (tx, _) = watch::channel(MetadataView::new(metadata.clone()));
        Ok(StateMachineStore {
            dir: dir.to_path_buf(),
            metadata,
            last_applied,
            last_membership,
            tx,
            feed: Arc::default(),
        })
    }

    /// The entries applied recently, for data nodes that keep a copy of the metadata.
    pub fn feed(&self) -> Arc<Mutex<Feed>> {
        self.feed.clone()
    }

    /// A receiver of the metadata, notified after every applied change.
    pub fn subscribe(&self) -> watch::Receiver<MetadataView> {
        self.tx.subscribe()
    }

    /// The metadata as last applied.
    pub fn metadata(&self) -> MetadataView {
        MetadataView::new(self.metadata.clone())
    }

    fn publish(&self) {
        self.tx
            .send_replace(MetadataView::new(self.metadata.clone()));
    }
}

/// A decoded snapshot file and its raw bytes.
type LoadedSnapshot = (SnapshotFile<Metadata>, Vec<u8>);

/// Reads and decodes a snapshot file; `None` if there is none.
fn read_snapshot_file(path: &Path) -> Result<Option<LoadedSnapshot>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::SnapshotIo {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let file = decode_snapshot(path, &bytes)?;
    Ok(Some((file, bytes)))
}

fn decode_snapshot(path: &Path, bytes: &[u8]) -> Result<SnapshotFile<Metadata>, StoreError> {
    #[derive(Deserialize)]
    struct Version {
        format_version: u32,
        #[serde(default)]
        metadata: MetadataVersion,
    }
    #[derive(Default, Deserialize)]
    struct MetadataVersion {
        #[serde(default)]
        format_version: u32,
    }
    let corrupt = |source| StoreError::CorruptSnapshot {
        path: path.to_path_buf(),
        source,
    };
    // The versions are checked first so that a newer format is reported as such, not as
    // garbage: the file's own, then that of the metadata inside it.
    let version: Version = serde_json::from_slice(bytes).map_err(corrupt)?;
    if version.format_version != SNAPSHOT_FORMAT_VERSION {
        return Err(StoreError::UnsupportedFormat {
            what: "controller snapshot",
            path: path.to_path_buf(),
            found: version.format_version,
            supported: SNAPSHOT_FORMAT_VERSION,
        });
    }
    if version.metadata.format_version > METADATA_FORMAT_VERSION {
        return Err(StoreError::UnsupportedFormat {
            what: "the controller metadata in snapshot",
            path: path.to_path_buf(),
            found: version.metadata.format_version,
            supported: METADATA_FORMAT_VERSION,
        });
    }
    serde_json::from_slice(bytes).map_err(corrupt)
}

fn encode_snapshot(meta: &SnapshotMeta, metadata: &Metadata) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&SnapshotFile {
        format_version: SNAPSHOT_FORMAT_VERSION,
        snapshot_id: meta.snapshot_id.clone(),
        last_applied: meta.last_log_id,
        last_membership: meta.last_membership.clone(),
        metadata,
    })
}

/// Atomically replaces `<dir>/snapshot.json` with `bytes`, unless the snapshot on disk covers
/// more of the log. Returns whether it wrote.
fn persist_snapshot(dir: &Path, bytes: &[u8], last_applied: Option<LogId>) -> io::Result<bool> {
    let _guard = crate::lock(&SNAPSHOT_WRITE);
    let path = dir.join(SNAPSHOT_FILE);
    match fs::read(&path) {
        Ok(current) => match serde_json::from_slice::<SnapshotHeader>(&current) {
            Ok(h) if h.last_applied > last_applied => {
                tracing::info!(
                    on_disk = ?h.last_applied,
                    new = ?last_applied,
                    "kept the newer snapshot on disk"
                );
                return Ok(false);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "replacing an unreadable snapshot")
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let tmp = dir.join(SNAPSHOT_TMP);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    sync_dir(dir)?;
    Ok(true)
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

fn snapshot_id(last_applied: Option<LogId>) -> String {
    // Unique per build: the same log position can be snapshotted twice.
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or_default();
    match last_applied {
        Some(l) => format!("{}-{}-{micros}", l.leader_id, l.index),
        None => format!("none-{micros}"),
    }
}

/// Builds a snapshot of the state as it was when openraft asked for the builder; applying
/// continues meanwhile on the state machine's own copy.
pub struct SnapshotBuilder {
    dir: PathBuf,
    metadata: Arc<Metadata>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id: snapshot_id(self.last_applied),
        };
        let dir = self.dir.clone();
        let metadata = self.metadata.clone();
        let signature = meta.signature();
        let task_meta = meta.clone();
        // Serialising and fsyncing are blocking work; keep them off the raft runtime.
        let bytes = tokio::task::spawn_blocking(move || -> io::Result<Vec<u8>> {
            let bytes = encode_snapshot(&task_meta, &metadata).map_err(io::Error::other)?;
            persist_snapshot(&dir, &bytes, task_meta.last_log_id)?;
            Ok(bytes)
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(signature.clone()), &e))?
        .map_err(|e| StorageIOError::write_snapshot(Some(signature), &e))?;
        tracing::info!(snapshot = %meta, bytes = bytes.len(), "built controller snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries = entries.into_iter();
        let mut results = Vec::with_capacity(entries.size_hint().0);
        let mut changed = false;
        let mut feed = crate::lock(&self.feed);
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            // Copies the metadata only if a reader still holds the published version, i.e. at
            // most once per batch.
            let metadata = Arc::make_mut(&mut self.metadata);
            // Set first: a command's effects carry the index of the entry that made them
            // (a transaction's commit index).
            metadata.applied_index = entry.log_id.index;
            let (result, cmd) = match entry.payload {
                EntryPayload::Blank => (CommandResult::default(), None),
                EntryPayload::Normal(cmd) => {
                    let r = metadata.apply(&cmd);
                    tracing::debug!(log_id = %entry.log_id, ?r, "applied controller command");
                    (r, Some(cmd))
                }
                EntryPayload::Membership(m) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    (CommandResult::default(), None)
                }
            };
            feed.push(entry.log_id.index, cmd);
            changed = true;
            results.push(result);
        }
        drop(feed);
        if changed {
            self.publish();
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            dir: self.dir.clone(),
            metadata: self.metadata.clone(),
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let err = |e: &dyn std::error::Error| {
            StorageError::from(StorageIOError::write_snapshot(
                Some(meta.signature()),
                openraft::AnyError::error(e.to_string()),
            ))
        };
        let received = snapshot.into_inner();
        let file =
            decode_snapshot(Path::new("<received snapshot>"), &received).map_err(|e| err(&e))?;
        // The meta openraft hands us is authoritative; rewrite the file from it so that
        // `get_current_snapshot` reports exactly this meta.
        let metadata = file.metadata;
        let dir = self.dir.clone();
        let task_meta = meta.clone();
        let (metadata, written) =
            tokio::task::spawn_blocking(move || -> io::Result<(Metadata, bool)> {
                let bytes = encode_snapshot(&task_meta, &metadata).map_err(io::Error::other)?;
                let written = persist_snapshot(&dir, &bytes, task_meta.last_log_id)?;
                Ok((metadata, written))
            })
            .await
            .map_err(|e| err(&e))?
            .map_err(|e| err(&e))?;
        if !written {
            tracing::warn!(snapshot = %meta, "installed a snapshot older than the one on disk");
        }
        self.metadata = Arc::new(metadata);
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        crate::lock(&self.feed).reset();
        self.publish();
        tracing::info!(snapshot = %meta, "installed controller snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let path = self.dir.join(SNAPSHOT_FILE);
        let read = tokio::task::spawn_blocking(move || read_snapshot_file(&path))
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(read.map(|(file, bytes)| Snapshot {
            meta: SnapshotMeta {
                last_log_id: file.last_applied,
                last_membership: file.last_membership,
                snapshot_id: file.snapshot_id,
            },
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
