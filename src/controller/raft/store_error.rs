//! Errors of the controller's own storage.

use std::path::PathBuf;

use crate::catalog::NodeId;
use crate::sqlstate::{ErrorCode, SqlState};

/// Why the controller's own storage failed: its directory, raft log store (redb) or
/// snapshot file. Raised when a controller opens; a client sees one inside
/// [`ControllerError::Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create controller directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open raft log store {path}")]
    OpenLog {
        path: PathBuf,
        #[source]
        source: Box<redb::DatabaseError>,
    },
    #[error("raft log store {path} failed")]
    LogStore {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("raft log store {path} is corrupt: {reason}")]
    CorruptLog { path: PathBuf, reason: String },
    #[error("cannot read or write controller snapshot {path}")]
    SnapshotIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("controller snapshot {path} is corrupt")]
    CorruptSnapshot {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} {path} has format version {found}; this build reads version {supported}")]
    UnsupportedFormat {
        what: &'static str,
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("node {node_id} is not a voting member of the controller group stored in {dir} (voters: {voters:?})")]
    NotMember {
        dir: PathBuf,
        node_id: NodeId,
        voters: Vec<NodeId>,
    },
}

impl ErrorCode for StoreError {
    fn sqlstate(&self) -> SqlState {
        match self {
            StoreError::CreateDir { .. }
            | StoreError::OpenLog { .. }
            | StoreError::LogStore { .. }
            | StoreError::SnapshotIo { .. } => SqlState::IO_ERROR,
            StoreError::CorruptLog { .. }
            | StoreError::CorruptSnapshot { .. }
            | StoreError::UnsupportedFormat { .. } => SqlState::DATA_CORRUPTED,
            StoreError::NotMember { .. } => SqlState::CONFIG_FILE_ERROR,
        }
    }

    fn retryable(&self) -> bool {
        false
    }
}
