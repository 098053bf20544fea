//! Replicated APPENDs applied from the master's own Parquet files.
//!
//! Every master data node that took part in an APPEND wrote its share as Parquet files named
//! by the transaction (`FileRecord::tid`). A slave whose table has the same physical schema
//! and knows every partition takes those files as they are: each slave owner fetches its
//! partitions' files from the master data node that holds them and stages them in the slave
//! transaction, with the statistics the master recorded. Nothing is decoded, routed, sorted
//! or encoded again; the slave only copies and fsyncs.
//!
//! The master's `<tid>.task` stays the authority on whether the task has data: the list of
//! files is asked of the task's holders only once the task data is in place on its source
//! node, and a slave that cannot use the files (a file compacted away and purged, a partition
//! it does not know yet, a schema that differs, a holder out of reach) applies the rows of
//! `<tid>.task` instead.

use std::path::Path;
use std::sync::atomic::AtomicU64;

use arrow::datatypes::SchemaRef;
use arrow_flight::FlightData;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::replication::protocol::{columns, FileTicket, ShippedFile, FILE};
use crate::rpc::client::Peers;
use crate::rpc::encode_ticket;
use crate::storage::{sync_dir, StorageError};

/// How a slave data node received replicated APPENDs, since it started (`/metrics`).
#[derive(Debug, Default)]
pub struct Received {
    /// Data files taken from the master as they are, and their bytes.
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    /// Rows fetched from the master's task data instead.
    pub rows: AtomicU64,
    /// Bytes of seeds' files fetched from the master (a file found in the seed cache is not
    /// counted: it was not fetched again).
    pub seed_fetched: AtomicU64,
    /// Bytes of seeds' files this node sent slaves (master).
    pub seed_sent: AtomicU64,
}

/// Fetches `file` from the master data node at `src` into `path` and makes it durable; checks
/// that it holds the rows and columns the master listed. Returns its size.
pub async fn fetch(
    peers: &Peers,
    src: &str,
    file: &ShippedFile,
    path: &Path,
    physical: &SchemaRef,
) -> Result<u64, StorageError> {
    fetch_as(peers, src, file, path, physical, false).await
}

/// Where a slave data node keeps a seed's file fetched from the master (under
/// `clusterReplicationWorkDir`): by the master's table generation, partition and file name.
pub fn cache_path(replication_dir: &Path, file: &ShippedFile) -> std::path::PathBuf {
    replication_dir
        .join(SEED_CACHE)
        .join(format!("{}.{}", file.table.0, file.table.1))
        .join(format!(
            "{:016x}-{}",
            crate::catalog::fnv1a(file.partition.as_bytes()),
            file.record.name
        ))
}

/// The directory of seeds' fetched files under `clusterReplicationWorkDir`.
pub const SEED_CACHE: &str = "seed";

/// Like [`fetch`], for a seed: the file is fetched once into `cache` (a name it gets only
/// when whole and checked) and linked from there to `path`, so a seed tried again after a
/// failure or a restart does not fetch it again. The cache is the seed's to delete.
pub async fn fetch_cached(
    peers: &Peers,
    src: &str,
    file: &ShippedFile,
    cache: &Path,
    path: &Path,
    physical: &SchemaRef,
    fetched: Option<&AtomicU64>,
) -> Result<u64, StorageError> {
    let cached = tokio::fs::metadata(cache)
        .await
        .is_ok_and(|m| m.len() == file.record.size);
    if !cached {
        let part = cache.with_extension("part");
        let size = fetch_as(peers, src, file, &part, physical, true).await?;
        if let Some(counter) = fetched {
            counter.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        }
        tokio::fs::rename(&part, cache)
            .await
            .map_err(|e| StorageError::io(cache, e))?;
    }
    let (cache, path) = (cache.to_path_buf(), path.to_path_buf());
    tokio::task::spawn_blocking(move || {
        if let Some(parent) = cache.parent() {
            sync_dir(parent)?;
        }
        let dir = path
            .parent()
            .ok_or_else(|| StorageError::Index(format!("no directory for {}", path.display())))?;
        crate::storage::create_dir_durable(dir)?;
        std::fs::hard_link(&cache, &path).map_err(|e| StorageError::io(&path, e))?;
        sync_dir(dir)
    })
    .await
    .map_err(|e| StorageError::Index(e.to_string()))??;
    Ok(file.record.size)
}

async fn fetch_as(
    peers: &Peers,
    src: &str,
    file: &ShippedFile,
    path: &Path,
    physical: &SchemaRef,
    seed: bool,
) -> Result<u64, StorageError> {
    let lost = |reason: String| StorageError::Transfer {
        path: path.to_path_buf(),
        reason,
    };
    let ticket = FileTicket {
        table: file.table,
        partition: file.partition.clone(),
        name: file.record.name.clone(),
        seed,
    };
    let ticket = encode_ticket(FILE, &ticket).map_err(|e| lost(e.to_string()))?;
    let mut client = peers.flight(src).map_err(|e| lost(e.to_string()))?;
    let mut stream = client
        .do_get(arrow_flight::Ticket { ticket })
        .await
        .map_err(|s| lost(crate::rpc::client::status_error(src, "do_get", s).to_string()))?
        .into_inner();
    let dir = path
        .parent()
        .ok_or_else(|| StorageError::Index(format!("no directory for {}", path.display())))?;
    let owned = dir.to_path_buf();
    tokio::task::spawn_blocking(move || crate::storage::create_dir_durable(&owned))
        .await
        .map_err(|e| StorageError::Index(e.to_string()))??;
    let result = async {
        let mut out = tokio::fs::File::create(path)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        while let Some(msg) = stream.next().await {
            let msg: FlightData = msg.map_err(|s| {
                lost(crate::rpc::client::status_error(src, "do_get", s).to_string())
            })?;
            out.write_all(&msg.data_body)
                .await
                .map_err(|e| StorageError::io(path, e))?;
        }
        out.sync_all()
            .await
            .map_err(|e| StorageError::io(path, e))?;
        let size = out
            .metadata()
            .await
            .map_err(|e| StorageError::io(path, e))?
            .len();
        if size != file.record.size {
            return Err(lost(format!(
                "got {size} bytes of {}, expected {}",
                file.record.name, file.record.size
            )));
        }
        // The footer check and the directory's fsync block: off the runtime's threads.
        let (path, physical, rows) = (path.to_path_buf(), physical.clone(), file.record.rows);
        tokio::task::spawn_blocking(move || {
            check(&path, &physical, rows)?;
            path.parent().map_or(Ok(()), sync_dir)
        })
        .await
        .map_err(|e| StorageError::Index(e.to_string()))??;
        Ok(size)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(path).await;
    }
    result
}

/// Checks a fetched file's footer: its rows, and its columns against the table's.
fn check(path: &Path, physical: &SchemaRef, rows: u64) -> Result<(), StorageError> {
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    let f = std::fs::File::open(path).map_err(|e| StorageError::io(path, e))?;
    let meta = ArrowReaderMetadata::load(&f, ArrowReaderOptions::new()).map_err(|source| {
        StorageError::Parquet {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let found = meta.metadata().file_metadata().num_rows();
    if u64::try_from(found).ok() != Some(rows) {
        return Err(StorageError::Transfer {
            path: path.to_path_buf(),
            reason: format!("the file holds {found} rows, the master listed {rows}"),
        });
    }
    if columns(meta.schema()) != columns(physical) {
        return Err(StorageError::Transfer {
            path: path.to_path_buf(),
            reason: "the file's columns are not the table's".into(),
        });
    }
    Ok(())
}
