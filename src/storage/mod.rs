//! On-disk storage of a data node: Parquet data files and the index that says which files make
//! up each partition ([`index::FileIndex`], a redb database).
//!
//! Layout under a data node's home:
//! ```text
//! data/<table_id>.<generation>/<partition path>/<tid>-<seq>.parquet
//! index.redb        files of every published partition, prepared (staged) transactions
//! ```
//! The index's format, and with it this layout, has a version recorded in the index
//! ([`index::INDEX_FORMAT_VERSION`]).
//!
//! A data file is immutable once written. It becomes visible only when the transaction that
//! wrote it is published into the index; a file on disk that the index does not name is garbage
//! from an aborted or crashed transaction and is deleted at start-up.

pub mod file;
pub mod index;

use std::path::PathBuf;

use crate::sqlstate::{ErrorCode, SqlState};

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
    #[error("file index {path} has format version {found}; this build reads version {supported}")]
    UnsupportedFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// A read at applied index `at`, below the table's horizon.
    #[error("snapshot too old: files of version {at} were released (the oldest readable version is {horizon}); retry the query")]
    SnapshotTooOld { at: u64, horizon: u64 },
    #[error("data file {path} did not arrive whole: {reason}")]
    Transfer { path: PathBuf, reason: String },
    #[error("could not serialize access due to concurrent update (transaction {holder} is replacing the same files)")]
    Claimed { holder: u64 },
    #[error("no data file {name:?} in partition {partition:?} of this table")]
    UnknownFile { partition: String, name: String },
}

impl StorageError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }
}

impl ErrorCode for StorageError {
    /// System errors, except what a retry can get past.
    fn sqlstate(&self) -> SqlState {
        match self {
            StorageError::Io { .. } => SqlState::IO_ERROR,
            StorageError::Corrupt { .. } | StorageError::UnsupportedFormat { .. } => {
                SqlState::DATA_CORRUPTED
            }
            StorageError::SnapshotTooOld { .. } => SqlState::SNAPSHOT_TOO_OLD,
            StorageError::Claimed { .. } => SqlState::SERIALIZATION_FAILURE,
            StorageError::Transfer { .. } => SqlState::CONNECTION_FAILURE,
            StorageError::UnknownFile { .. } => SqlState::UNDEFINED_FILE,
            StorageError::Parquet { .. } | StorageError::Index(_) => SqlState::INTERNAL_ERROR,
        }
    }

    /// A query at a newer version, a rewrite after the one holding the files, a file sent
    /// again: each may succeed.
    fn retryable(&self) -> bool {
        matches!(
            self,
            StorageError::SnapshotTooOld { .. }
                | StorageError::Claimed { .. }
                | StorageError::Transfer { .. }
        )
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

/// Creates `dir` and its missing ancestors durably: each new directory's entry is fsynced in
/// its parent, so a file made durable inside it (file and `dir` fsynced) survives an OS crash
/// along with the directories that lead to it. An existing `dir` costs one `stat`.
pub fn create_dir_durable(dir: &std::path::Path) -> Result<(), StorageError> {
    let missing: Vec<&std::path::Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.is_dir())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
    // Outermost first, so each parent's entry is durable before its child's.
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent() {
            let parent = if parent.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                parent
            };
            sync_dir(parent)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_created_with_their_ancestors_and_a_file_in_the_way_is_an_error() {
        let home = tempfile::tempdir().unwrap();
        let nested = home.path().join("data").join("7").join("20230101");
        create_dir_durable(&nested).unwrap();
        assert!(nested.is_dir());
        // Existing: nothing to do.
        create_dir_durable(&nested).unwrap();
        let file = nested.join("f");
        std::fs::write(&file, b"x").unwrap();
        let e = create_dir_durable(&file.join("below")).unwrap_err();
        assert!(e.to_string().contains("below"), "{e}");
    }
}
