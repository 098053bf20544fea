//! The file index of a data node: which published files make up each partition, and which
//! transactions have staged files that are not published yet.
//!
//! Stored in `index.redb` (redb commits are fsynced), mirrored in memory as one immutable
//! [`TableFiles`] per table generation that is swapped on every change, so readers take a
//! consistent snapshot with one `Arc` clone and never see half of a transaction.
//!
//! Files are versioned by commit: publishing records the transaction's commit index (the
//! controller's log index of its commit) on every file it adds, and on every file it removes.
//! A reader at applied index `V` sees the files added at or before `V` and not removed at or
//! before `V`
//! ([`TableFiles::visible_at`]), so every node of a cluster answers a query for the same set of
//! transactions. Removed files are kept for readers of older versions for a retention period
//! ([`FileIndex::purge`]); after that the table's *horizon* rises and older reads fail with
//! "snapshot too old" instead of returning a wrong answer.
//!
//! Format, version [`INDEX_FORMAT_VERSION`] (= 1), redb tables:
//! - `meta`: `"format_version"` → the version of the file (`u32`). An index without it was
//!   written before the version was recorded, in version 1, and gets the record when opened; an
//!   index of a version this build does not know is refused ([`StorageError::UnsupportedFormat`]),
//!   never misread.
//! - `files`: `(table_id, generation, partition, file name)` → JSON [`FileRecord`]
//!   (`removed` set while a removed file is retained)
//! - `prepared`: `tid` → JSON [`PreparedTxn`], whose `version` is [`PREPARED_VERSION`]
//! - `horizons`: `(table_id, generation)` → the oldest applied index still readable
//!
//! The data files the index names are Parquet files under `data/` ([`super::file`]); their
//! layout belongs to this format too.
//!
//! Publishing a transaction moves its staged files into `files` and deletes its prepared record
//! in one redb transaction: it happens exactly once, even across crashes.
//!
//! A transaction that removes files (UPDATE, DELETE) *claims* them when it stages; a claimed
//! file cannot be claimed by another transaction or compacted until the claim is released
//! (published or discarded), so two transactions never replace the same file.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::file::{DataFile, DataFileRef, FileRecord};
use super::{partition_dir, StorageError};
use crate::lock;

/// A table generation: `(table id, generation)`.
pub type TableKey = (u32, u64);

const FILES: TableDefinition<(u32, u64, &str, &str), &[u8]> = TableDefinition::new("files");
const PREPARED: TableDefinition<u64, &[u8]> = TableDefinition::new("prepared");
const HORIZONS: TableDefinition<(u32, u64), u64> = TableDefinition::new("horizons");
const META: TableDefinition<&str, u32> = TableDefinition::new("meta");

/// The key of the index's format version in `meta`.
const KEY_FORMAT_VERSION: &str = "format_version";

/// Version of the index format (its tables and records) written by this build, the only one
/// it reads.
pub const INDEX_FORMAT_VERSION: u32 = 1;

/// Format version of [`PreparedTxn`] records written by this build; newer records are refused.
pub const PREPARED_VERSION: u32 = 1;

/// A removed file kept for readers at indexes before its removal.
#[derive(Debug, Clone)]
pub struct Retired {
    pub file: DataFileRef,
    /// The commit index that removed it.
    pub removed: u64,
    /// When it was removed (or loaded at start-up), for the retention period.
    pub since: Instant,
}

/// The files of one table generation, by partition.
#[derive(Debug, Default, Clone)]
pub struct TableFiles {
    /// The live files.
    pub partitions: BTreeMap<String, Vec<DataFileRef>>,
    /// Removed files still readable at older indexes.
    pub retired: Vec<Retired>,
    /// Reads at applied indexes below this fail: files they would need are deleted.
    pub horizon: u64,
    /// Indexes below the horizon still readable: every file visible there was kept
    /// ([`FileIndex::purge`]'s pins).
    pub pins: BTreeSet<u64>,
}

impl TableFiles {
    /// The live files (as of the latest commit).
    pub fn files(&self) -> impl Iterator<Item = &DataFileRef> {
        self.partitions.values().flatten()
    }

    /// Rows of the live files.
    pub fn rows(&self) -> u64 {
        self.files().map(|f| f.record.rows).sum()
    }

    /// The files a reader at applied index `at` sees: added at or before it, not removed at or
    /// before it.
    pub fn visible_at(&self, at: u64) -> Result<Vec<DataFileRef>, StorageError> {
        if at < self.horizon && !self.pins.contains(&at) {
            return Err(StorageError::SnapshotTooOld {
                at,
                horizon: self.horizon,
            });
        }
        Ok(self.visible_at_pin(at))
    }

    /// The files visible at a pinned index (see [`FileIndex::purge`]): every one of them is
    /// kept since the pin was set, whatever the horizon says of other indexes below it.
    pub fn visible_at_pin(&self, at: u64) -> Vec<DataFileRef> {
        let live = self.files().filter(|f| f.record.commit_index <= at);
        let retired = self
            .retired
            .iter()
            .filter(|r| r.file.record.commit_index <= at && at < r.removed)
            .map(|r| &r.file);
        live.chain(retired).cloned().collect()
    }
}

/// A file staged by a transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StagedFile {
    pub table: TableKey,
    pub partition: String,
    pub record: FileRecord,
}

/// A published file a transaction replaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedFile {
    pub table: TableKey,
    pub partition: String,
    pub name: String,
}

/// Everything a participant needs to publish or discard a transaction after a crash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreparedTxn {
    pub version: u32,
    pub tid: u64,
    pub adds: Vec<StagedFile>,
    pub removes: Vec<RemovedFile>,
}

fn idx_err(e: impl std::fmt::Display) -> StorageError {
    StorageError::Index(e.to_string())
}

/// Decodes the prepared record of `tid`, refusing one of a newer version than this build's.
fn decode_prepared(tid: u64, bytes: &[u8]) -> Result<PreparedTxn, StorageError> {
    let corrupt = |e: serde_json::Error| StorageError::Corrupt {
        key: format!("prepared/{tid}"),
        reason: e.to_string(),
    };
    let txn: PreparedTxn = serde_json::from_slice(bytes).map_err(corrupt)?;
    if txn.version > PREPARED_VERSION {
        return Err(StorageError::Corrupt {
            key: format!("prepared/{tid}"),
            reason: format!(
                "record format version {} is newer than this build reads ({PREPARED_VERSION})",
                txn.version
            ),
        });
    }
    Ok(txn)
}

/// A file by table generation, partition and name.
type FileKey = (TableKey, String, String);

/// The index: redb on disk, snapshots in memory.
pub struct FileIndex {
    db: Database,
    data_dir: PathBuf,
    tables: RwLock<HashMap<TableKey, Arc<TableFiles>>>,
    /// Held across every change and its mirroring in memory, so that a change that returned
    /// (even one found already done by another caller) is visible to the next snapshot.
    writer: Mutex<()>,
    /// Transactions prepared here, not yet published or discarded.
    prepared: Mutex<BTreeSet<u64>>,
    /// Files claimed by a transaction that replaces them, and by which.
    claims: Mutex<HashMap<FileKey, u64>>,
    /// Notified whenever claims are released.
    released: tokio::sync::Notify,
}

impl std::fmt::Debug for FileIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileIndex")
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

fn file_key(r: &RemovedFile) -> FileKey {
    (r.table, r.partition.clone(), r.name.clone())
}

impl FileIndex {
    /// Opens the index of the data node whose home is `home`, loading every published file.
    pub fn open(home: &Path) -> Result<Self, StorageError> {
        let data_dir = home.join("data");
        super::create_dir_durable(&data_dir)?;
        let path = home.join("index.redb");
        let db = Database::create(&path).map_err(idx_err)?;
        {
            let w = db.begin_write().map_err(idx_err)?;
            {
                let mut meta = w.open_table(META).map_err(idx_err)?;
                let found = meta
                    .get(KEY_FORMAT_VERSION)
                    .map_err(idx_err)?
                    .map(|v| v.value());
                match found {
                    Some(INDEX_FORMAT_VERSION) => {}
                    // Written before the version was recorded: version 1.
                    None => {
                        meta.insert(KEY_FORMAT_VERSION, INDEX_FORMAT_VERSION)
                            .map_err(idx_err)?;
                    }
                    // Dropping the transaction leaves the file as it was.
                    Some(found) => {
                        return Err(StorageError::UnsupportedFormat {
                            path,
                            found,
                            supported: INDEX_FORMAT_VERSION,
                        })
                    }
                }
            }
            w.open_table(FILES).map_err(idx_err)?;
            w.open_table(PREPARED).map_err(idx_err)?;
            w.open_table(HORIZONS).map_err(idx_err)?;
            w.commit().map_err(idx_err)?;
        }
        let index = FileIndex {
            db,
            data_dir,
            tables: RwLock::new(HashMap::new()),
            writer: Mutex::new(()),
            prepared: Mutex::new(BTreeSet::new()),
            claims: Mutex::new(HashMap::new()),
            released: tokio::sync::Notify::new(),
        };
        index.load()?;
        Ok(index)
    }

    fn load(&self) -> Result<(), StorageError> {
        let r = self.db.begin_read().map_err(idx_err)?;
        let t = r.open_table(FILES).map_err(idx_err)?;
        let mut tables: HashMap<TableKey, TableFiles> = HashMap::new();
        let now = Instant::now();
        for entry in t.iter().map_err(idx_err)? {
            let (k, v) = entry.map_err(idx_err)?;
            let (id, generation, partition, name) = k.value();
            let record: FileRecord =
                serde_json::from_slice(v.value()).map_err(|e| StorageError::Corrupt {
                    key: format!("{id}.{generation}/{partition}/{name}"),
                    reason: e.to_string(),
                })?;
            let key = (id, generation);
            let removed = record.removed;
            let file = Arc::new(self.data_file(key, partition, record));
            let table = tables.entry(key).or_default();
            match removed {
                Some(removed) => table.retired.push(Retired {
                    file,
                    removed,
                    since: now,
                }),
                None => table
                    .partitions
                    .entry(partition.to_string())
                    .or_default()
                    .push(file),
            }
        }
        let h = r.open_table(HORIZONS).map_err(idx_err)?;
        for entry in h.iter().map_err(idx_err)? {
            let (k, v) = entry.map_err(idx_err)?;
            if let Some(t) = tables.get_mut(&k.value()) {
                t.horizon = v.value();
            }
        }
        let prepared = self.prepared()?;
        {
            let mut claims = lock(&self.claims);
            for txn in &prepared {
                for r in &txn.removes {
                    claims.insert(file_key(r), txn.tid);
                }
            }
        }
        *lock(&self.prepared) = prepared.iter().map(|t| t.tid).collect();
        let mut guard = self.tables.write().map_err(idx_err)?;
        *guard = tables.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        Ok(())
    }

    fn data_file(&self, key: TableKey, partition: &str, record: FileRecord) -> DataFile {
        let path = self.file_path(key, partition, &record.name);
        DataFile::new(key, partition.to_string(), path, record)
    }

    /// The directory of a table generation.
    pub fn table_dir(&self, key: TableKey) -> PathBuf {
        self.data_dir.join(format!("{}.{}", key.0, key.1))
    }

    /// Where a data file of a partition lives.
    pub fn file_path(&self, key: TableKey, partition: &str, name: &str) -> PathBuf {
        self.table_dir(key)
            .join(partition_dir(partition))
            .join(name)
    }

    /// A consistent snapshot of a table generation's files.
    pub fn snapshot(&self, key: TableKey) -> Arc<TableFiles> {
        self.tables
            .read()
            .ok()
            .and_then(|t| t.get(&key).cloned())
            .unwrap_or_default()
    }

    /// Durably records a transaction's staged files (its files are already fsynced).
    pub fn prepare(&self, txn: &PreparedTxn) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(txn).map_err(idx_err)?;
        let w = self.db.begin_write().map_err(idx_err)?;
        w.open_table(PREPARED)
            .map_err(idx_err)?
            .insert(txn.tid, bytes.as_slice())
            .map_err(idx_err)?;
        w.commit().map_err(idx_err)?;
        lock(&self.prepared).insert(txn.tid);
        Ok(())
    }

    /// Prepared transactions not yet published or discarded (in-doubt after a restart).
    pub fn prepared(&self) -> Result<Vec<PreparedTxn>, StorageError> {
        let r = self.db.begin_read().map_err(idx_err)?;
        let t = r.open_table(PREPARED).map_err(idx_err)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(idx_err)? {
            let (k, v) = entry.map_err(idx_err)?;
            out.push(decode_prepared(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// The ids of the prepared transactions (from memory: cheap).
    pub fn prepared_tids(&self) -> Vec<u64> {
        lock(&self.prepared).iter().copied().collect()
    }

    /// Whether any transaction is prepared here (cheap).
    pub fn has_prepared(&self) -> bool {
        !lock(&self.prepared).is_empty()
    }

    /// Claims `files` for transaction `tid`, all or none. Fails with the holder when another
    /// transaction claimed one of them.
    pub fn claim(&self, tid: u64, files: &[RemovedFile]) -> Result<(), StorageError> {
        let mut claims = lock(&self.claims);
        for f in files {
            if let Some(holder) = claims.get(&file_key(f)).filter(|h| **h != tid) {
                return Err(StorageError::Claimed { holder: *holder });
            }
        }
        for f in files {
            claims.insert(file_key(f), tid);
        }
        Ok(())
    }

    /// The transaction holding a claim on one of `files`, if any.
    pub fn claimed<'a>(&self, files: impl IntoIterator<Item = &'a DataFileRef>) -> Option<u64> {
        let claims = lock(&self.claims);
        if claims.is_empty() {
            return None;
        }
        files.into_iter().find_map(|f| {
            claims
                .get(&(f.table, f.partition.clone(), f.record.name.clone()))
                .copied()
        })
    }

    /// Notified whenever a transaction's claims are released; create the future before
    /// checking [`claimed`](Self::claimed) so that no release is missed.
    pub fn released(&self) -> &tokio::sync::Notify {
        &self.released
    }

    fn release(&self, tid: u64) {
        let mut claims = lock(&self.claims);
        let before = claims.len();
        claims.retain(|_, holder| *holder != tid);
        if claims.len() != before {
            self.released.notify_waiters();
        }
    }

    /// Publishes a prepared transaction committed at `commit_index`: its files become visible all
    /// at once to readers at `commit_index` and later. Publishing a transaction that is no longer
    /// prepared does nothing; when this returns, the transaction is visible either way.
    pub fn publish(&self, tid: u64, commit_index: u64) -> Result<(), StorageError> {
        let _writer = lock(&self.writer);
        let w = self.db.begin_write().map_err(idx_err)?;
        let txn: PreparedTxn = {
            let mut prepared = w.open_table(PREPARED).map_err(idx_err)?;
            let Some(v) = prepared.remove(tid).map_err(idx_err)? else {
                return Ok(());
            };
            decode_prepared(tid, v.value())?
        };
        tracing::debug!(tid, commit_index, adds = txn.adds.len(), removes = ?txn.removes.iter().map(|r| (&r.partition, &r.name)).collect::<Vec<_>>(), "publishing");
        self.apply_change(w, &txn.adds, &txn.removes, commit_index)?;
        lock(&self.prepared).remove(&tid);
        self.release(tid);
        Ok(())
    }

    /// Publishes a node-local change that needs no distributed commit (compaction) at
    /// `commit_index`, if every file of `removes` is still live; returns false, changing nothing,
    /// when one of them was removed meanwhile (a transaction replaced it after the change
    /// read it: the change's files would bring its old rows back).
    pub fn replace_local(
        &self,
        adds: &[StagedFile],
        removes: &[RemovedFile],
        commit_index: u64,
    ) -> Result<bool, StorageError> {
        let _writer = lock(&self.writer);
        let w = self.db.begin_write().map_err(idx_err)?;
        {
            let files = w.open_table(FILES).map_err(idx_err)?;
            for r in removes {
                let key = (r.table.0, r.table.1, r.partition.as_str(), r.name.as_str());
                let live = files
                    .get(key)
                    .map_err(idx_err)?
                    .and_then(|v| serde_json::from_slice::<FileRecord>(v.value()).ok())
                    .is_some_and(|record| record.removed.is_none());
                if !live {
                    return Ok(false);
                }
            }
        }
        self.apply_change(w, adds, removes, commit_index)?;
        Ok(true)
    }

    /// Adds `adds` and retires `removes` at `commit_index`, on disk then in memory. The caller holds
    /// `writer`.
    fn apply_change(
        &self,
        w: redb::WriteTransaction,
        adds: &[StagedFile],
        removes: &[RemovedFile],
        commit_index: u64,
    ) -> Result<(), StorageError> {
        let added: Vec<StagedFile> = adds
            .iter()
            .map(|a| {
                let mut a = a.clone();
                a.record.commit_index = commit_index;
                a
            })
            .collect();
        {
            let mut files = w.open_table(FILES).map_err(idx_err)?;
            for r in removes {
                let key = (r.table.0, r.table.1, r.partition.as_str(), r.name.as_str());
                let record = files
                    .get(key)
                    .map_err(idx_err)?
                    .and_then(|v| serde_json::from_slice::<FileRecord>(v.value()).ok());
                if let Some(mut record) = record {
                    record.removed = Some(commit_index);
                    let bytes = serde_json::to_vec(&record).map_err(idx_err)?;
                    files.insert(key, bytes.as_slice()).map_err(idx_err)?;
                }
            }
            for a in &added {
                let bytes = serde_json::to_vec(&a.record).map_err(idx_err)?;
                files
                    .insert(
                        (
                            a.table.0,
                            a.table.1,
                            a.partition.as_str(),
                            a.record.name.as_str(),
                        ),
                        bytes.as_slice(),
                    )
                    .map_err(idx_err)?;
            }
        }
        w.commit().map_err(idx_err)?;

        // Mirror the change in memory: copy-on-write of each touched table.
        let mut tables = self.tables.write().map_err(idx_err)?;
        let touched: HashSet<TableKey> = added
            .iter()
            .map(|a| a.table)
            .chain(removes.iter().map(|r| r.table))
            .collect();
        let now = Instant::now();
        for key in touched {
            let mut t = tables.get(&key).map(|t| (**t).clone()).unwrap_or_default();
            for r in removes.iter().filter(|r| r.table == key) {
                if let Some(files) = t.partitions.get_mut(&r.partition) {
                    if let Some(i) = files.iter().position(|f| f.record.name == r.name) {
                        t.retired.push(Retired {
                            file: files.remove(i),
                            removed: commit_index,
                            since: now,
                        });
                    }
                    if files.is_empty() {
                        t.partitions.remove(&r.partition);
                    }
                }
            }
            for a in added.iter().filter(|a| a.table == key) {
                let file = self.data_file(key, &a.partition, a.record.clone());
                t.partitions
                    .entry(a.partition.clone())
                    .or_default()
                    .push(Arc::new(file));
            }
            tables.insert(key, Arc::new(t));
        }
        Ok(())
    }

    /// Deletes removed files retired for at least `retention`, raising their tables'
    /// horizons; returns how many were deleted. A running scan holding one keeps it until it
    /// finishes. A file visible at one of the `pinned` indexes is kept (a slave's seed reads
    /// the files of its cut; see [`TableFiles::visible_at_pin`]).
    pub fn purge(
        &self,
        retention: Duration,
        pinned: &BTreeSet<u64>,
    ) -> Result<usize, StorageError> {
        let _writer = lock(&self.writer);
        let ripe: Vec<(TableKey, Vec<Retired>)> = {
            let tables = self.tables.read().map_err(idx_err)?;
            tables
                .iter()
                .filter_map(|(key, t)| {
                    let ripe: Vec<Retired> = t
                        .retired
                        .iter()
                        .filter(|r| r.since.elapsed() >= retention)
                        .filter(|r| {
                            pinned
                                .range(r.file.record.commit_index..r.removed)
                                .next()
                                .is_none()
                        })
                        .cloned()
                        .collect();
                    (!ripe.is_empty()).then_some((*key, ripe))
                })
                .collect()
        };
        if ripe.is_empty() {
            return Ok(0);
        }
        let w = self.db.begin_write().map_err(idx_err)?;
        let mut horizons = HashMap::new();
        {
            let mut files = w.open_table(FILES).map_err(idx_err)?;
            let mut stored = w.open_table(HORIZONS).map_err(idx_err)?;
            for (key, retired) in &ripe {
                for r in retired {
                    let f = &r.file;
                    files
                        .remove((key.0, key.1, f.partition.as_str(), f.record.name.as_str()))
                        .map_err(idx_err)?;
                }
                let old = stored.get(*key).map_err(idx_err)?.map(|v| v.value());
                let horizon = retired
                    .iter()
                    .map(|r| r.removed)
                    .chain(old)
                    .max()
                    .unwrap_or(0);
                stored.insert(*key, horizon).map_err(idx_err)?;
                horizons.insert(*key, horizon);
            }
        }
        w.commit().map_err(idx_err)?;
        let mut tables = self.tables.write().map_err(idx_err)?;
        let mut purged = 0;
        for (key, retired) in ripe {
            let Some(current) = tables.get(&key) else {
                continue;
            };
            let mut t = (**current).clone();
            t.retired.retain(|r| {
                let gone = retired.iter().any(|x| Arc::ptr_eq(&x.file, &r.file));
                if gone {
                    r.file.mark_obsolete();
                    purged += 1;
                }
                !gone
            });
            t.horizon = t.horizon.max(horizons[&key]);
            t.pins = pinned.range(..t.horizon).copied().collect();
            tables.insert(key, Arc::new(t));
        }
        Ok(purged)
    }

    /// Discards a prepared (or only partly staged) transaction: deletes its files and record
    /// and releases its claims.
    pub fn discard(&self, tid: u64, staged: &[StagedFile]) -> Result<(), StorageError> {
        tracing::debug!(tid, "discarding");
        let w = self.db.begin_write().map_err(idx_err)?;
        let mut files: Vec<StagedFile> = staged.to_vec();
        {
            let mut prepared = w.open_table(PREPARED).map_err(idx_err)?;
            let old = prepared.remove(tid).map_err(idx_err)?;
            if let Some(txn) =
                old.and_then(|v| serde_json::from_slice::<PreparedTxn>(v.value()).ok())
            {
                files.extend(txn.adds);
            }
        }
        w.commit().map_err(idx_err)?;
        lock(&self.prepared).remove(&tid);
        self.release(tid);
        for f in files {
            let path = self.file_path(f.table, &f.partition, &f.record.name);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(StorageError::io(path, e));
                }
            }
        }
        Ok(())
    }

    /// Forgets every table generation `keep` rejects (dropped or truncated tables) and deletes
    /// their directories once no snapshot holds their files.
    pub fn retain_tables(&self, keep: impl Fn(TableKey) -> bool) -> Result<usize, StorageError> {
        let _writer = lock(&self.writer);
        let doomed: Vec<TableKey> = {
            let tables = self.tables.read().map_err(idx_err)?;
            tables.keys().copied().filter(|k| !keep(*k)).collect()
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        let w = self.db.begin_write().map_err(idx_err)?;
        {
            let mut files = w.open_table(FILES).map_err(idx_err)?;
            let mut horizons = w.open_table(HORIZONS).map_err(idx_err)?;
            for (id, generation) in &doomed {
                let keys: Vec<(String, String)> = files
                    .range((*id, *generation, "", "")..)
                    .map_err(idx_err)?
                    .map_while(|e| {
                        let (k, _) = e.ok()?;
                        let (i, g, p, n) = k.value();
                        (i == *id && g == *generation).then(|| (p.to_string(), n.to_string()))
                    })
                    .collect();
                for (p, n) in keys {
                    files
                        .remove((*id, *generation, p.as_str(), n.as_str()))
                        .map_err(idx_err)?;
                }
                horizons.remove((*id, *generation)).map_err(idx_err)?;
            }
        }
        w.commit().map_err(idx_err)?;
        let mut tables = self.tables.write().map_err(idx_err)?;
        for key in &doomed {
            if let Some(t) = tables.remove(key) {
                t.files().for_each(|f| f.mark_obsolete());
                t.retired.iter().for_each(|r| r.file.mark_obsolete());
            }
        }
        Ok(doomed.len())
    }

    /// Deletes files under `data/` that neither the index nor a prepared transaction names:
    /// leftovers of transactions that crashed before preparing. Call before accepting writes.
    pub fn remove_orphans(&self) -> Result<usize, StorageError> {
        let mut known: HashSet<PathBuf> = HashSet::new();
        {
            let tables = self.tables.read().map_err(idx_err)?;
            for t in tables.values() {
                known.extend(t.files().map(|f| f.path.clone()));
                known.extend(t.retired.iter().map(|r| r.file.path.clone()));
            }
        }
        for txn in self.prepared()? {
            for a in txn.adds {
                known.insert(self.file_path(a.table, &a.partition, &a.record.name));
            }
        }
        let mut removed = 0;
        let mut stack = vec![self.data_dir.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| StorageError::io(&dir, e))?;
            let mut empty = true;
            for entry in entries {
                let entry = entry.map_err(|e| StorageError::io(&dir, e))?;
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    empty = false;
                } else if known.contains(&path) {
                    empty = false;
                } else {
                    std::fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
                    removed += 1;
                }
            }
            if empty && dir != self.data_dir {
                // Best effort: a directory emptied by garbage collection.
                let _ = std::fs::remove_dir(&dir);
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlstate::{ErrorCode, SqlState};

    const T: TableKey = (7, 1);

    fn record(name: &str, rows: u64) -> FileRecord {
        FileRecord {
            name: name.to_string(),
            size: 1,
            rows,
            tid: 0,
            stats: BTreeMap::new(),
            commit_index: 0,
            removed: None,
        }
    }

    fn staged(name: &str, rows: u64) -> StagedFile {
        StagedFile {
            table: T,
            partition: "p".to_string(),
            record: record(name, rows),
        }
    }

    fn removed(name: &str) -> RemovedFile {
        RemovedFile {
            table: T,
            partition: "p".to_string(),
            name: name.to_string(),
        }
    }

    fn prepare(index: &FileIndex, tid: u64, adds: &[&str], removes: &[&str]) {
        let txn = PreparedTxn {
            version: PREPARED_VERSION,
            tid,
            adds: adds.iter().map(|n| staged(n, 10)).collect(),
            removes: removes.iter().map(|n| removed(n)).collect(),
        };
        index.claim(tid, &txn.removes).unwrap();
        index.prepare(&txn).unwrap();
    }

    fn names_at(index: &FileIndex, at: u64) -> Vec<String> {
        let mut names: Vec<String> = index
            .snapshot(T)
            .visible_at(at)
            .unwrap()
            .iter()
            .map(|f| f.record.name.clone())
            .collect();
        names.sort();
        names
    }

    fn stored_format_version(home: &Path) -> Option<u32> {
        let db = Database::open(home.join("index.redb")).unwrap();
        let r = db.begin_read().unwrap();
        let meta = r.open_table(META).unwrap();
        let v = meta.get(KEY_FORMAT_VERSION).unwrap().map(|v| v.value());
        v
    }

    fn set_format_version(home: &Path, version: Option<u32>) {
        let db = Database::open(home.join("index.redb")).unwrap();
        let w = db.begin_write().unwrap();
        match version {
            Some(v) => {
                w.open_table(META)
                    .unwrap()
                    .insert(KEY_FORMAT_VERSION, v)
                    .unwrap();
            }
            None => {
                w.delete_table(META).unwrap();
            }
        }
        w.commit().unwrap();
    }

    #[test]
    fn an_index_without_a_version_is_version_1_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let index = FileIndex::open(dir.path()).unwrap();
        prepare(&index, 1, &["a"], &[]);
        index.publish(1, 10).unwrap();
        drop(index);
        assert_eq!(
            stored_format_version(dir.path()),
            Some(INDEX_FORMAT_VERSION)
        );

        // As written by builds before the version was recorded.
        set_format_version(dir.path(), None);
        let index = FileIndex::open(dir.path()).unwrap();
        assert_eq!(names_at(&index, 10), ["a"]);
        drop(index);
        assert_eq!(stored_format_version(dir.path()), Some(1));

        // As written by a later build.
        set_format_version(dir.path(), Some(INDEX_FORMAT_VERSION + 1));
        let err = FileIndex::open(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::UnsupportedFormat { found, supported: INDEX_FORMAT_VERSION, .. }
                    if found == INDEX_FORMAT_VERSION + 1
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("index.redb has format version 2"),
            "{err}"
        );
        assert_eq!(err.sqlstate(), crate::sqlstate::SqlState::DATA_CORRUPTED);
        // Refusing changed nothing.
        assert_eq!(
            stored_format_version(dir.path()),
            Some(INDEX_FORMAT_VERSION + 1)
        );
    }

    #[test]
    fn a_prepared_record_of_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let index = FileIndex::open(dir.path()).unwrap();
        let mut txn = PreparedTxn {
            version: PREPARED_VERSION + 1,
            tid: 5,
            adds: vec![staged("a", 1)],
            removes: vec![],
        };
        index.prepare(&txn).unwrap();
        let err = index.publish(5, 10).unwrap_err();
        assert!(err.to_string().contains("record format version 2"), "{err}");
        assert!(index.snapshot(T).files().next().is_none());
        drop(index);
        let err = FileIndex::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("prepared/5"), "{err}");

        txn.version = PREPARED_VERSION;
        let dir = tempfile::tempdir().unwrap();
        let index = FileIndex::open(dir.path()).unwrap();
        index.prepare(&txn).unwrap();
        index.publish(5, 10).unwrap();
        assert_eq!(names_at(&index, 10), ["a"]);
    }

    #[test]
    fn readers_see_exactly_the_versions_at_or_before_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let index = FileIndex::open(dir.path()).unwrap();
        prepare(&index, 1, &["a"], &[]);
        index.publish(1, 10).unwrap();
        prepare(&index, 2, &["b"], &[]);
        index.publish(2, 20).unwrap();
        // An UPDATE at 30 replaces a with c.
        prepare(&index, 3, &["c"], &["a"]);
        index.publish(3, 30).unwrap();

        assert!(names_at(&index, 9).is_empty());
        assert_eq!(names_at(&index, 10), ["a"]);
        assert_eq!(names_at(&index, 29), ["a", "b"]);
        assert_eq!(names_at(&index, 30), ["b", "c"]);
        let live: Vec<_> = index
            .snapshot(T)
            .files()
            .map(|f| f.record.name.clone())
            .collect();
        assert_eq!(live.len(), 2);

        // Versions and retired files survive a restart.
        drop(index);
        let index = FileIndex::open(dir.path()).unwrap();
        assert_eq!(names_at(&index, 29), ["a", "b"]);
        assert_eq!(names_at(&index, 30), ["b", "c"]);
    }

    #[test]
    fn purged_files_make_older_reads_fail_instead_of_lying() {
        let dir = tempfile::tempdir().unwrap();
        let index = FileIndex::open(dir.path()).unwrap();
        let path = index.file_path(T, "p", "a");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"x").unwrap();
        prepare(&index, 1, &["a"], &[]);
        index.publish(1, 10).unwrap();
        prepare(&index, 2, &["b"], &["a"]);
        index.publish(2, 20).unwrap();

        // Still within retention: nothing is purged.
        assert_eq!(
            index
                .purge(Duration::from_secs(3600), &BTreeSet::new())
                .unwrap(),
            0
        );
        assert_eq!(names_at(&index, 15), ["a"]);
        // A seed's cut at 15 pins the file visible there; one at 20 or later does not.
        assert_eq!(
            index.purge(Duration::ZERO, &BTreeSet::from([15])).unwrap(),
            0
        );
        let pinned: Vec<_> = (index.snapshot(T).visible_at_pin(15).iter())
            .map(|f| f.record.name.clone())
            .collect();
        assert_eq!(pinned, ["a"]);
        assert!(path.exists());
        let held = index.snapshot(T).visible_at(15).unwrap();

        assert_eq!(
            index
                .purge(Duration::ZERO, &BTreeSet::from([5, 20]))
                .unwrap(),
            1
        );
        let err = index.snapshot(T).visible_at(15).unwrap_err();
        assert!(matches!(
            err,
            StorageError::SnapshotTooOld { horizon: 20, .. }
        ));
        assert_eq!(err.sqlstate(), SqlState::SNAPSHOT_TOO_OLD);
        // A pin below the horizon stays readable.
        assert!(index.snapshot(T).visible_at(5).unwrap().is_empty());
        assert_eq!(names_at(&index, 20), ["b"]);
        // A reader holding the file keeps it until done.
        assert!(path.exists());
        drop(held);
        assert!(!path.exists());

        // The horizon survives a restart.
        drop(index);
        let index = FileIndex::open(dir.path()).unwrap();
        assert!(index.snapshot(T).visible_at(19).is_err());
        assert_eq!(names_at(&index, 20), ["b"]);
    }

    /// Compaction read `a` and `b`; a transaction replaced `a` before the swap. The swap must
    /// not happen: the merged file would bring `a`'s old rows back next to their new version.
    #[test]
    fn a_local_replace_of_a_file_removed_meanwhile_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let index = FileIndex::open(dir.path()).unwrap();
        prepare(&index, 1, &["a", "b"], &[]);
        index.publish(1, 10).unwrap();
        prepare(&index, 2, &["a2"], &["a"]);
        index.publish(2, 11).unwrap();
        let merged = [staged("ab", 20)];
        assert!(!index
            .replace_local(&merged, &[removed("a"), removed("b")], 10)
            .unwrap());
        assert_eq!(names_at(&index, 11), ["a2", "b"]);
        assert!(index
            .replace_local(&[staged("b2", 10)], &[removed("b")], 10)
            .unwrap());
        assert_eq!(names_at(&index, 11), ["a2", "b2"]);
        drop(index);
        let index = FileIndex::open(dir.path()).unwrap();
        assert_eq!(names_at(&index, 11), ["a2", "b2"]);
    }

    #[test]
    fn a_claimed_file_cannot_be_claimed_again_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let index = FileIndex::open(dir.path()).unwrap();
        prepare(&index, 1, &["a"], &[]);
        index.publish(1, 10).unwrap();
        let a = index.snapshot(T).files().cloned().collect::<Vec<_>>();

        prepare(&index, 2, &["b"], &["a"]);
        assert_eq!(index.claimed(&a), Some(2));
        let err = index.claim(3, &[removed("a")]).unwrap_err();
        assert!(matches!(err, StorageError::Claimed { holder: 2 }));
        assert_eq!(err.sqlstate(), SqlState::SERIALIZATION_FAILURE);

        // Claims of prepared transactions survive a restart.
        drop(index);
        let index = FileIndex::open(dir.path()).unwrap();
        assert_eq!(index.claimed(&a), Some(2));
        assert_eq!(index.prepared_tids(), [2]);

        index.discard(2, &[]).unwrap();
        assert_eq!(index.claimed(&a), None);
        index.claim(3, &[removed("a")]).unwrap();
        assert!(!index.has_prepared());
    }
}
