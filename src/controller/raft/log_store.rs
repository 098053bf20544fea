//! The controller's durable raft log: entries, vote, committed log id and last purged log id,
//! in one redb file, `<dir>/raft-log.redb`.
//!
//! Invariants:
//! - Every write (append, truncate, purge, vote, committed) is one redb write transaction
//!   committed with [`Durability::Immediate`] (fsync) before the call returns, and an append's
//!   flush callback fires only after that commit. Writes are serialised: openraft calls them one
//!   at a time through `&mut self` and each awaits its commit.
//! - The log has no holes: entries are kept for the contiguous index range
//!   `(last_purged, last]`. Truncate removes a suffix, purge removes a prefix and records the
//!   purged log id in the same transaction, so a crash never leaves one without the other.
//! - redb is synchronous; every access runs on tokio's blocking pool so fsyncs never stall the
//!   runtime that drives raft.
//!
//! On-disk format, version [`LOG_FORMAT_VERSION`] (= 1):
//! - table `logs`: `u64` log index → JSON of [`openraft::Entry`] (log id + payload, where the
//!   payload of a normal entry is the [`Command`](crate::controller::metadata::Command)).
//! - table `meta`: `&str` key → JSON value: `format_version` (`u32`), `vote`
//!   ([`openraft::Vote`]), `committed` (`Option<LogId>`), `last_purged` ([`openraft::LogId`]).
//!
//! A file with another `format_version` is refused rather than misread.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};
use redb::{Database, Durability, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use super::StoreError;

/// File name of the log store inside the controller directory.
pub const LOG_FILE: &str = "raft-log.redb";

/// Version of the log store format written by this build.
pub const LOG_FORMAT_VERSION: u32 = 1;

const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const KEY_FORMAT_VERSION: &str = "format_version";
const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";

/// The durable raft log of one controller. Cheap to clone: clones share the open database,
/// which is how openraft's log readers read concurrently with the writer (redb's MVCC gives
/// each read a consistent view).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
}

/// Why a log store operation failed; turned into openraft's [`StorageError`] with the subject
/// and verb of the operation.
#[derive(Debug, thiserror::Error)]
enum LogStoreError {
    #[error("redb error in {path}: {source}")]
    Redb {
        path: PathBuf,
        // Boxed: redb's error is large and this travels in every `Result` of the store.
        #[source]
        source: Box<redb::Error>,
    },
    #[error("corrupt {what} in {path}: {source}")]
    Decode {
        path: PathBuf,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("corrupt log in {path}: key {key} holds the entry of index {found}")]
    Misplaced { path: PathBuf, key: u64, found: u64 },
    #[error("log store task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Just the log id of a stored entry, to read the last log id without decoding the payload.
#[derive(Deserialize)]
struct EntryLogId {
    log_id: LogId,
}

impl LogStore {
    /// Opens `<dir>/raft-log.redb`, creating it (and its tables) if it does not exist.
    /// Blocking: call it from a blocking context.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(LOG_FILE);
        let db = Database::create(&path).map_err(|source| StoreError::OpenLog {
            path: path.clone(),
            source: Box::new(source),
        })?;
        let store = LogStore {
            inner: Arc::new(Inner {
                db,
                path: path.clone(),
            }),
        };
        let found = store.inner.init_format().map_err(|e| match e {
            LogStoreError::Redb { source, .. } => StoreError::LogStore {
                path: path.clone(),
                source,
            },
            other => StoreError::CorruptLog {
                path: path.clone(),
                reason: other.to_string(),
            },
        })?;
        if found != LOG_FORMAT_VERSION {
            return Err(StoreError::UnsupportedFormat {
                what: "raft log",
                path,
                found,
                supported: LOG_FORMAT_VERSION,
            });
        }
        tracing::debug!(path = %store.inner.path.display(), "opened raft log store");
        Ok(store)
    }

    /// The path of the redb file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the blocking pool: redb reads and fsyncing commits are synchronous.
    async fn blocking<T, F>(&self, f: F) -> Result<T, LogStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, LogStoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await?
    }
}

impl Inner {
    fn redb(&self, source: impl Into<redb::Error>) -> LogStoreError {
        LogStoreError::Redb {
            path: self.path.clone(),
            source: Box::new(source.into()),
        }
    }

    fn decode<T: DeserializeOwned>(&self, what: &str, bytes: &[u8]) -> Result<T, LogStoreError> {
        serde_json::from_slice(bytes).map_err(|source| LogStoreError::Decode {
            path: self.path.clone(),
            what: what.to_string(),
            source,
        })
    }

    /// Creates the tables and records the format version on a new file; returns the version
    /// found in the file.
    fn init_format(&self) -> Result<u32, LogStoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.redb(e))?;
        txn.set_durability(Durability::Immediate);
        let found = {
            // Opening a table in a write transaction creates it, so later read transactions
            // never meet a missing table.
            txn.open_table(LOGS).map_err(|e| self.redb(e))?;
            let mut meta = txn.open_table(META).map_err(|e| self.redb(e))?;
            let stored = meta
                .get(KEY_FORMAT_VERSION)
                .map_err(|e| self.redb(e))?
                .map(|v| self.decode::<u32>("format version", v.value()))
                .transpose()?;
            match stored {
                Some(v) => v,
                None => {
                    let bytes = encode("format version", &LOG_FORMAT_VERSION)?;
                    meta.insert(KEY_FORMAT_VERSION, bytes.as_slice())
                        .map_err(|e| self.redb(e))?;
                    LOG_FORMAT_VERSION
                }
            }
        };
        txn.commit().map_err(|e| self.redb(e))?;
        Ok(found)
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, LogStoreError> {
        let txn = self.db.begin_read().map_err(|e| self.redb(e))?;
        let meta = txn.open_table(META).map_err(|e| self.redb(e))?;
        let value = meta.get(key).map_err(|e| self.redb(e))?;
        value.map(|v| self.decode(key, v.value())).transpose()
    }

    fn write_meta(&self, key: &str, bytes: &[u8]) -> Result<(), LogStoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.redb(e))?;
        txn.set_durability(Durability::Immediate);
        {
            let mut meta = txn.open_table(META).map_err(|e| self.redb(e))?;
            meta.insert(key, bytes).map_err(|e| self.redb(e))?;
        }
        txn.commit().map_err(|e| self.redb(e))
    }

    fn log_state(&self) -> Result<LogState<TypeConfig>, LogStoreError> {
        let txn = self.db.begin_read().map_err(|e| self.redb(e))?;
        let meta = txn.open_table(META).map_err(|e| self.redb(e))?;
        let last_purged_log_id: Option<LogId> = meta
            .get(KEY_LAST_PURGED)
            .map_err(|e| self.redb(e))?
            .map(|v| self.decode("last purged log id", v.value()))
            .transpose()?;
        let logs = txn.open_table(LOGS).map_err(|e| self.redb(e))?;
        let last = logs.last().map_err(|e| self.redb(e))?;
        let last_log_id = match last {
            Some((key, value)) => {
                let e: EntryLogId = self.decode("log entry", value.value())?;
                if e.log_id.index != key.value() {
                    return Err(LogStoreError::Misplaced {
                        path: self.path.clone(),
                        key: key.value(),
                        found: e.log_id.index,
                    });
                }
                Some(e.log_id)
            }
            // Everything was purged: the last log id is the last purged one.
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    fn entries(&self, start: u64, end: Option<u64>) -> Result<Vec<Entry>, LogStoreError> {
        let txn = self.db.begin_read().map_err(|e| self.redb(e))?;
        let logs = txn.open_table(LOGS).map_err(|e| self.redb(e))?;
        let range = match end {
            Some(end) => logs.range(start..end),
            None => logs.range(start..),
        }
        .map_err(|e| self.redb(e))?;
        let mut out = Vec::new();
        for item in range {
            let (key, value) = item.map_err(|e| self.redb(e))?;
            let entry: Entry = self.decode("log entry", value.value())?;
            if entry.log_id.index != key.value() {
                return Err(LogStoreError::Misplaced {
                    path: self.path.clone(),
                    key: key.value(),
                    found: entry.log_id.index,
                });
            }
            out.push(entry);
        }
        Ok(out)
    }

    fn append(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), LogStoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.redb(e))?;
        txn.set_durability(Durability::Immediate);
        {
            let mut logs = txn.open_table(LOGS).map_err(|e| self.redb(e))?;
            for (index, bytes) in entries {
                logs.insert(*index, bytes.as_slice())
                    .map_err(|e| self.redb(e))?;
            }
        }
        txn.commit().map_err(|e| self.redb(e))
    }

    /// Removes the entries with index `>= since`.
    fn truncate(&self, since: u64) -> Result<(), LogStoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.redb(e))?;
        txn.set_durability(Durability::Immediate);
        {
            let mut logs = txn.open_table(LOGS).map_err(|e| self.redb(e))?;
            logs.retain_in(since.., |_, _| false)
                .map_err(|e| self.redb(e))?;
        }
        txn.commit().map_err(|e| self.redb(e))
    }

    /// Records `upto` as purged and removes the entries with index `<= upto.index`, atomically.
    fn purge(&self, upto: &LogId, upto_bytes: &[u8]) -> Result<(), LogStoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.redb(e))?;
        txn.set_durability(Durability::Immediate);
        {
            let mut meta = txn.open_table(META).map_err(|e| self.redb(e))?;
            meta.insert(KEY_LAST_PURGED, upto_bytes)
                .map_err(|e| self.redb(e))?;
            let mut logs = txn.open_table(LOGS).map_err(|e| self.redb(e))?;
            logs.retain_in(..=upto.index, |_, _| false)
                .map_err(|e| self.redb(e))?;
        }
        txn.commit().map_err(|e| self.redb(e))
    }
}

fn encode<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Vec<u8>, LogStoreError> {
    serde_json::to_vec(value).map_err(|source| LogStoreError::Encode {
        what: what.to_string(),
        source,
    })
}

fn io_error(subject: ErrorSubject<u64>, verb: ErrorVerb, e: &LogStoreError) -> StorageError {
    StorageIOError::new(subject, verb, e).into()
}

/// Normalises a range of log indexes to `[start, end)`; `None` when it is empty.
fn index_range<RB: RangeBounds<u64>>(range: &RB) -> Option<(u64, Option<u64>)> {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.checked_add(1),
        Bound::Excluded(e) => Some(*e),
        Bound::Unbounded => None,
    };
    match end {
        Some(end) if end <= start => None,
        _ => Some((start, end)),
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let Some((start, end)) = index_range(&range) else {
            return Ok(Vec::new());
        };
        self.blocking(move |s| s.entries(start, end))
            .await
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.blocking(|s| s.log_state())
            .await
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let err = |e: &LogStoreError| io_error(ErrorSubject::Vote, ErrorVerb::Write, e);
        let bytes = encode("vote", vote).map_err(|e| err(&e))?;
        self.blocking(move |s| s.write_meta(KEY_VOTE, &bytes))
            .await
            .map_err(|e| err(&e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.blocking(|s| s.read_meta(KEY_VOTE))
            .await
            .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Read, &e))
    }

    /// Persisting the committed log id lets a restarted node re-apply the committed entries
    /// after its snapshot at once, before any election: the state machine lives in memory and
    /// is rebuilt from the snapshot plus these entries.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let err = |e: &LogStoreError| io_error(ErrorSubject::Store, ErrorVerb::Write, e);
        let bytes = encode("committed log id", &committed).map_err(|e| err(&e))?;
        self.blocking(move |s| s.write_meta(KEY_COMMITTED, &bytes))
            .await
            .map_err(|e| err(&e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let stored: Option<Option<LogId>> = self
            .blocking(|s| s.read_meta(KEY_COMMITTED))
            .await
            .map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, &e))?;
        Ok(stored.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let err = |e: &LogStoreError| io_error(ErrorSubject::Logs, ErrorVerb::Write, e);
        let mut rows = Vec::new();
        for entry in entries {
            let bytes = encode("log entry", &entry).map_err(|e| err(&e))?;
            rows.push((entry.log_id.index, bytes));
        }
        let result = if rows.is_empty() {
            Ok(())
        } else {
            self.blocking(move |s| s.append(&rows)).await
        };
        match result {
            Ok(()) => {
                // The commit above has fsynced: the entries are durable.
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(err(&e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(since = %log_id, "truncating raft log");
        let since = log_id.index;
        self.blocking(move |s| s.truncate(since))
            .await
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, &e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let err = |e: &LogStoreError| io_error(ErrorSubject::Logs, ErrorVerb::Delete, e);
        let bytes = encode("last purged log id", &log_id).map_err(|e| err(&e))?;
        self.blocking(move |s| s.purge(&log_id, &bytes))
            .await
            .map_err(|e| err(&e))?;
        tracing::debug!(upto = %log_id, "purged raft log");
        Ok(())
    }
}
