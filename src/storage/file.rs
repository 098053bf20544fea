//! One immutable Parquet data file: writing it durably, and the statistics recorded with it so
//! that scans can skip files without opening them.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use super::{sync_dir, StorageError, TableKey};

/// Per-column statistics of a file. Values are kept as text (the Arrow cast of the column's
/// type to and from UTF-8 round-trips them) so that the index format does not depend on
/// DataFusion's in-memory types.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    pub min: Option<String>,
    pub max: Option<String>,
    pub nulls: u64,
}

/// What the index records about a data file: JSON in the index, part of its format
/// ([`super::index::INDEX_FORMAT_VERSION`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// File name inside its partition directory.
    pub name: String,
    pub size: u64,
    pub rows: u64,
    /// The transaction that wrote it (0 for compaction output).
    pub tid: u64,
    /// Statistics by physical column name (`c<id>`).
    #[serde(default)]
    pub stats: BTreeMap<String, ColumnStats>,
    /// The commit index (the controller's log index of the commit) that published it; 0 while
    /// staged, and for files published before it was recorded (visible to every reader).
    /// Serialised as `version`, the name the file index has always stored.
    #[serde(default, rename = "version")]
    pub commit_index: u64,
    /// The commit index that removed it, while the index keeps it for readers at older
    /// indexes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
}

/// A published data file, shared by every snapshot that lists it. When a file is replaced
/// (rewrite, compaction, drop) it is marked obsolete and deleted once the last snapshot holding
/// it is gone, so a running scan never loses its files.
#[derive(Debug)]
pub struct DataFile {
    pub table: TableKey,
    pub partition: String,
    pub path: PathBuf,
    pub record: FileRecord,
    obsolete: AtomicBool,
}

impl DataFile {
    pub fn new(table: TableKey, partition: String, path: PathBuf, record: FileRecord) -> Self {
        DataFile {
            table,
            partition,
            path,
            record,
            obsolete: AtomicBool::new(false),
        }
    }

    /// Marks the file for deletion when its last reader is done.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    /// The min and max of a column, typed, if recorded.
    pub fn min_max(&self, physical: &str, ty: &DataType) -> (ScalarValue, ScalarValue) {
        let null = || ScalarValue::try_from(ty).unwrap_or(ScalarValue::Null);
        let parse = |v: &Option<String>| {
            v.as_ref()
                .and_then(|s| ScalarValue::try_from_string(s.clone(), ty).ok())
                .unwrap_or_else(null)
        };
        match self.record.stats.get(physical) {
            Some(s) => (parse(&s.min), parse(&s.max)),
            None => (null(), null()),
        }
    }

    pub fn null_count(&self, physical: &str) -> Option<u64> {
        self.record.stats.get(physical).map(|s| s.nulls)
    }
}

impl Drop for DataFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            if let Err(e) = std::fs::remove_file(&self.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot delete obsolete data file");
                }
            }
        }
    }
}

/// Shared handle to a published file.
pub type DataFileRef = Arc<DataFile>;

/// Rows per Parquet row group: small enough that row-group statistics prune well, large
/// enough that decoding stays vectorised.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Writes `batches` (all of `schema`) to a new Parquet file at `path`, its rows sorted by the
/// columns `sort_by` (so that row-group statistics are tight on them), and makes it durable: the
/// file and its directory entry are fsynced before this returns.
pub fn write_parquet(
    path: &Path,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    tid: u64,
    sort_by: &[usize],
) -> Result<FileRecord, StorageError> {
    let sorted;
    let batches = if sort_by.is_empty() {
        batches
    } else {
        sorted = sort(schema, batches, sort_by).map_err(|e| StorageError::Parquet {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        std::slice::from_ref(&sorted)
    };
    let dir = path.parent().ok_or_else(|| {
        StorageError::Index(format!("no parent directory for {}", path.display()))
    })?;
    super::create_dir_durable(dir)?;
    let file = File::create(path).map_err(|e| StorageError::io(path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let perr = |source| StorageError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(perr)?;
    for b in batches {
        writer.write(b).map_err(perr)?;
    }
    let file = writer.into_inner().map_err(perr)?;
    file.sync_all().map_err(|e| StorageError::io(path, e))?;
    let size = file
        .metadata()
        .map_err(|e| StorageError::io(path, e))?
        .len();
    sync_dir(dir)?;
    Ok(FileRecord {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size,
        rows: batches.iter().map(|b| b.num_rows() as u64).sum(),
        tid,
        stats: column_stats(schema, batches),
        commit_index: 0,
        removed: None,
    })
}

/// One batch with the rows of `batches` in the order of the columns `sort_by` (nulls first).
fn sort(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    sort_by: &[usize],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn};
    let all = concat_batches(schema, batches)?;
    let keys: Vec<SortColumn> = sort_by
        .iter()
        .map(|&i| SortColumn {
            values: all.column(i).clone(),
            options: None,
        })
        .collect();
    let indices = lexsort_to_indices(&keys, None)?;
    take_record_batch(&all, &indices)
}

/// Min, max and null count of every column whose values have a text form.
fn column_stats(schema: &SchemaRef, batches: &[RecordBatch]) -> BTreeMap<String, ColumnStats> {
    let mut out = BTreeMap::new();
    for (i, field) in schema.fields().iter().enumerate() {
        if matches!(field.data_type(), DataType::Binary | DataType::LargeBinary) {
            continue;
        }
        let (Ok(mut min), Ok(mut max)) = (
            MinAccumulator::try_new(field.data_type()),
            MaxAccumulator::try_new(field.data_type()),
        ) else {
            continue;
        };
        let mut nulls = 0u64;
        let mut ok = true;
        for b in batches {
            let col = b.column(i);
            nulls += col.null_count() as u64;
            ok &= min.update_batch(std::slice::from_ref(col)).is_ok()
                && max.update_batch(std::slice::from_ref(col)).is_ok();
        }
        let (min, max) = match (ok, min.evaluate(), max.evaluate()) {
            (true, Ok(lo), Ok(hi)) => (Some(lo), Some(hi)),
            _ => (None, None),
        };
        let text = |v: Option<ScalarValue>| v.filter(|v| !v.is_null()).map(|v| v.to_string());
        out.insert(
            field.name().clone(),
            ColumnStats {
                min: text(min),
                max: text(max),
                nulls,
            },
        );
    }
    out
}
