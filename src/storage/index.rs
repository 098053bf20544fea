//! The file index of a data node: which published files make up each partition, and which
//! transactions have staged files that are not published yet.
//!
//! Stored in `index.redb` (redb commits are fsynced), mirrored in memory as one immutable
//! [`TableFiles`] per table generation that is swapped on every change, so readers take a
//! consistent snapshot with one `Arc` clone and never see half of a transaction.
//!
//! Tables (format version 1):
//! - `files`: `(table_id, generation, partition, file name)` → JSON [`FileRecord`]
//! - `prepared`: `tid` → JSON [`PreparedTxn`]
//!
//! Publishing a transaction moves its staged files into `files` and deletes its prepared record
//! in one redb transaction: it happens exactly once, even across crashes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::file::{DataFile, DataFileRef, FileRecord};
use super::{partition_dir, StorageError};

/// A table generation: `(table id, generation)`.
pub type TableKey = (u32, u64);

const FILES: TableDefinition<(u32, u64, &str, &str), &[u8]> = TableDefinition::new("files");
const PREPARED: TableDefinition<u64, &[u8]> = TableDefinition::new("prepared");

/// Format version of [`PreparedTxn`] records written by this build.
pub const PREPARED_VERSION: u32 = 1;

/// The files of one table generation, by partition.
#[derive(Debug, Default, Clone)]
pub struct TableFiles {
    pub partitions: BTreeMap<String, Vec<DataFileRef>>,
}

impl TableFiles {
    pub fn files(&self) -> impl Iterator<Item = &DataFileRef> {
        self.partitions.values().flatten()
    }

    pub fn rows(&self) -> u64 {
        self.files().map(|f| f.record.rows).sum()
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

/// The index: redb on disk, snapshots in memory.
pub struct FileIndex {
    db: Database,
    data_dir: PathBuf,
    tables: RwLock<HashMap<TableKey, Arc<TableFiles>>>,
}

impl std::fmt::Debug for FileIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileIndex")
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

impl FileIndex {
    /// Opens the index of the data node whose home is `home`, loading every published file.
    pub fn open(home: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(home).map_err(|e| StorageError::io(home, e))?;
        let data_dir = home.join("data");
        std::fs::create_dir_all(&data_dir).map_err(|e| StorageError::io(&data_dir, e))?;
        let path = home.join("index.redb");
        let db = Database::create(&path).map_err(idx_err)?;
        {
            let w = db.begin_write().map_err(idx_err)?;
            w.open_table(FILES).map_err(idx_err)?;
            w.open_table(PREPARED).map_err(idx_err)?;
            w.commit().map_err(idx_err)?;
        }
        let index = FileIndex {
            db,
            data_dir,
            tables: RwLock::new(HashMap::new()),
        };
        index.load()?;
        Ok(index)
    }

    fn load(&self) -> Result<(), StorageError> {
        let r = self.db.begin_read().map_err(idx_err)?;
        let t = r.open_table(FILES).map_err(idx_err)?;
        let mut tables: HashMap<TableKey, TableFiles> = HashMap::new();
        for entry in t.iter().map_err(idx_err)? {
            let (k, v) = entry.map_err(idx_err)?;
            let (id, generation, partition, name) = k.value();
            let record: FileRecord =
                serde_json::from_slice(v.value()).map_err(|e| StorageError::Corrupt {
                    key: format!("{id}.{generation}/{partition}/{name}"),
                    reason: e.to_string(),
                })?;
            let key = (id, generation);
            let file = self.data_file(key, partition, record);
            tables
                .entry(key)
                .or_default()
                .partitions
                .entry(partition.to_string())
                .or_default()
                .push(Arc::new(file));
        }
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
        w.commit().map_err(idx_err)
    }

    /// Prepared transactions not yet published or discarded (in-doubt after a restart).
    pub fn prepared(&self) -> Result<Vec<PreparedTxn>, StorageError> {
        let r = self.db.begin_read().map_err(idx_err)?;
        let t = r.open_table(PREPARED).map_err(idx_err)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(idx_err)? {
            let (k, v) = entry.map_err(idx_err)?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|e| StorageError::Corrupt {
                    key: format!("prepared/{}", k.value()),
                    reason: e.to_string(),
                })?,
            );
        }
        Ok(out)
    }

    /// Whether `tid` is prepared here.
    pub fn is_prepared(&self, tid: u64) -> Result<bool, StorageError> {
        let r = self.db.begin_read().map_err(idx_err)?;
        let t = r.open_table(PREPARED).map_err(idx_err)?;
        Ok(t.get(tid).map_err(idx_err)?.is_some())
    }

    /// Whether any transaction is prepared here (cheap).
    pub fn has_prepared(&self) -> bool {
        let Ok(r) = self.db.begin_read() else {
            return true;
        };
        let Ok(t) = r.open_table(PREPARED) else {
            return true;
        };
        !matches!(redb::ReadableTableMetadata::is_empty(&t), Ok(true))
    }

    /// Publishes a prepared transaction: its files become visible all at once.
    /// Publishing a transaction that is no longer prepared does nothing.
    pub fn publish(&self, tid: u64) -> Result<(), StorageError> {
        let w = self.db.begin_write().map_err(idx_err)?;
        let txn: PreparedTxn = {
            let mut prepared = w.open_table(PREPARED).map_err(idx_err)?;
            let Some(v) = prepared.remove(tid).map_err(idx_err)? else {
                return Ok(());
            };
            serde_json::from_slice(v.value()).map_err(|e| StorageError::Corrupt {
                key: format!("prepared/{tid}"),
                reason: e.to_string(),
            })?
        };
        self.apply_change(w, &txn.adds, &txn.removes)
    }

    /// Publishes a node-local change that needs no distributed commit (compaction).
    pub fn replace_local(
        &self,
        adds: &[StagedFile],
        removes: &[RemovedFile],
    ) -> Result<(), StorageError> {
        let w = self.db.begin_write().map_err(idx_err)?;
        self.apply_change(w, adds, removes)
    }

    fn apply_change(
        &self,
        w: redb::WriteTransaction,
        adds: &[StagedFile],
        removes: &[RemovedFile],
    ) -> Result<(), StorageError> {
        {
            let mut files = w.open_table(FILES).map_err(idx_err)?;
            for r in removes {
                files
                    .remove((r.table.0, r.table.1, r.partition.as_str(), r.name.as_str()))
                    .map_err(idx_err)?;
            }
            for a in adds {
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
        let touched: HashSet<TableKey> = adds
            .iter()
            .map(|a| a.table)
            .chain(removes.iter().map(|r| r.table))
            .collect();
        for key in touched {
            let mut t = tables.get(&key).map(|t| (**t).clone()).unwrap_or_default();
            for r in removes.iter().filter(|r| r.table == key) {
                if let Some(files) = t.partitions.get_mut(&r.partition) {
                    files.retain(|f| {
                        let gone = f.record.name == r.name;
                        if gone {
                            f.mark_obsolete();
                        }
                        !gone
                    });
                    if files.is_empty() {
                        t.partitions.remove(&r.partition);
                    }
                }
            }
            for a in adds.iter().filter(|a| a.table == key) {
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

    /// Discards a prepared (or only partly staged) transaction: deletes its files and record.
    pub fn discard(&self, tid: u64, staged: &[StagedFile]) -> Result<(), StorageError> {
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
            }
        }
        w.commit().map_err(idx_err)?;
        let mut tables = self.tables.write().map_err(idx_err)?;
        for key in &doomed {
            if let Some(t) = tables.remove(key) {
                t.files().for_each(|f| f.mark_obsolete());
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
