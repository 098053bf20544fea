//! On-disk storage of a data node: Parquet data files and the index that says which files make
//! up each partition ([`index::FileIndex`], a redb database).
//!
//! Layout under a data node's home:
//! ```text
//! data/<table_id>.<generation>/<partition path>/<tid>-<seq>.parquet
//! index.redb        files of every published partition, prepared (staged) transactions
//! ```
//! A data file is immutable once written. It becomes visible only when the transaction that
//! wrote it is published into the index; a file on disk that the index does not name is garbage
//! from an aborted or crashed transaction and is deleted at start-up.

pub mod file;
pub mod index;

use std::path::PathBuf;

pub use file::{write_parquet, ColumnStats, DataFile, DataFileRef, FileRecord};
pub use index::{FileIndex, PreparedTxn, RemovedFile, Retired, StagedFile, TableFiles, TableKey};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parquet error on {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("file index error: {0}")]
    Index(String),
    #[error("corrupt file index entry {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("snapshot too old: files of version {version} were released (the oldest readable version is {horizon}); retry the query")]
    SnapshotTooOld { version: u64, horizon: u64 },
    #[error("data file {path} did not arrive whole: {reason}")]
    Transfer { path: PathBuf, reason: String },
    #[error("could not serialize access due to concurrent update (transaction {holder} is replacing the same files)")]
    Claimed { holder: u64 },
}

impl StorageError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }

    /// The PostgreSQL SQLSTATE: system errors, except the two a retry can get past.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            StorageError::Io { .. } => "58030",
            StorageError::Corrupt { .. } => "XX001",
            StorageError::SnapshotTooOld { .. } => "72000",
            StorageError::Claimed { .. } => "40001",
            StorageError::Transfer { .. } => "08006",
            _ => "XX000",
        }
    }
}

/// Encodes one partition name component into a safe directory name.
pub fn encode_component(c: &str) -> String {
    if c.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(c.len());
    for b in c.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The relative directory of a partition: one encoded directory per level.
pub fn partition_dir(partition: &str) -> PathBuf {
    partition.split('/').map(encode_component).collect()
}

/// fsyncs a directory so that a rename or create inside it is durable.
pub fn sync_dir(dir: &std::path::Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}
