//! Partition digests: what `checkClusterReplicationConsistency` compares between a master and
//! a slave. A partition's digest is its row count and an order-independent hash of its rows'
//! contents (the wrapping sum of one hash per row), so two copies that hold the same rows in
//! different files, orders or row groups agree, and a changed, missing or extra row shows.
//!
//! A row's hash covers its values column by column, in the table's column order, each as a
//! canonical encoding of the value (not of how a file stores it): fixed-width values by their
//! bytes, strings and binaries by their length and bytes, NULL by a marker of its own. The
//! hash is FNV-1a finished with a 64-bit mixer, the same in every build: master and slave may
//! run different versions.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::storage::{DataFileRef, StorageError};

/// `dn.digest`: the digests of a table's partitions on one data node.
pub const DIGEST: &str = "dn.digest";

/// `dn.digest`: the partitions of `table` of `db` (its current generation) as visible at the
/// controller log index `at`. On a master, `after_task` is the slave's read point: the answer
/// is refused while a DDL task of the database after it is queued (the table may have
/// changed shape or generation since).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DigestRequest {
    pub db: String,
    pub table: String,
    pub at: u64,
    #[serde(default)]
    pub after_task: Option<u64>,
}

/// One partition's digest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub rows: u64,
    pub hash: u64,
}

impl Digest {
    fn add(&mut self, other: Digest) {
        self.rows += other.rows;
        self.hash = self.hash.wrapping_add(other.hash);
    }
}

/// Digests by partition.
pub type Digests = BTreeMap<String, Digest>;

/// Adds `more` to `all` (the partitions of several data nodes).
pub fn merge(all: &mut Digests, more: Digests) {
    for (partition, d) in more {
        all.entry(partition).or_default().add(d);
    }
}

/// The digests of `files` (a table's files visible at one index), read as `physical` (the
/// table's physical columns: a column a file lacks, added later, reads as NULL). A file that
/// cannot be read (deleted or damaged on disk) adds nothing, so its partition shows as
/// differing rather than failing the whole comparison; it is logged.
pub fn digest_files(files: &[DataFileRef], physical: &SchemaRef) -> Digests {
    // Files are digested on as many threads as the machine has cores.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, files.len().max(1));
    let per_thread = files.len().div_ceil(threads).max(1);
    let parts: Vec<Digests> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per_thread)
            .map(|chunk| scope.spawn(move || digest_some(chunk, physical)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut out = Digests::new();
    for part in parts {
        merge(&mut out, part);
    }
    out
}

fn digest_some(files: &[DataFileRef], physical: &SchemaRef) -> Digests {
    let mut out = Digests::new();
    for f in files {
        let entry = out.entry(f.partition.clone()).or_default();
        match digest_file(&f.path, physical) {
            Ok(d) => entry.add(d),
            Err(e) => {
                tracing::warn!(partition = %f.partition, file = %f.path.display(), error = %e, "a data file cannot be read for a digest")
            }
        }
    }
    out
}

fn digest_file(path: &Path, physical: &SchemaRef) -> Result<Digest, StorageError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let parquet_err = |source| StorageError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|e| StorageError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(parquet_err)?
        .with_batch_size(64 * 1024)
        .build()
        .map_err(parquet_err)?;
    let mut digest = Digest::default();
    for batch in reader {
        let batch = batch.map_err(|e| parquet_err(e.into()))?;
        digest.add(digest_batch(&batch, physical));
    }
    Ok(digest)
}

/// The digest of a batch's rows, its columns taken by name in `physical`'s order.
pub fn digest_batch(batch: &RecordBatch, physical: &SchemaRef) -> Digest {
    let rows = batch.num_rows();
    let mut hashes = vec![FNV_OFFSET; rows];
    for (i, field) in physical.fields().iter().enumerate() {
        let tag = (i as u32).to_le_bytes();
        match batch.column_by_name(field.name()) {
            Some(c) => hash_column(&mut hashes, &tag, c),
            None => {
                for h in hashes.iter_mut() {
                    fnv(h, &tag);
                    fnv(h, NULL);
                }
            }
        }
    }
    Digest {
        rows: rows as u64,
        hash: hashes
            .into_iter()
            .fold(0u64, |sum, h| sum.wrapping_add(mix(h))),
    }
}

/// The encoding of NULL (no value's encoding starts with it after a column's tag: lengths
/// are 8 bytes, fixed-width values have their width).
const NULL: &[u8] = &[0xff, 0x00];

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

/// SplitMix64's finisher: spreads FNV's low-entropy high bits before the rows are summed.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Feeds the column's values, one a row, each after `tag`, into `hashes`.
fn hash_column(hashes: &mut [u64], tag: &[u8], column: &ArrayRef) {
    let nulls = column.logical_nulls();
    let null = |row: usize| nulls.as_ref().is_some_and(|n| n.is_null(row));
    // Each row: the tag, then NULL or the value's bytes (`len` prefixes variable ones).
    let mut each = |value: &mut dyn FnMut(&mut u64, usize)| {
        for (row, h) in hashes.iter_mut().enumerate() {
            fnv(h, tag);
            if null(row) {
                fnv(h, NULL);
            } else {
                value(h, row);
            }
        }
    };
    let with_len = |h: &mut u64, bytes: &[u8]| {
        fnv(h, &(bytes.len() as u64).to_le_bytes());
        fnv(h, bytes);
    };
    match column.data_type() {
        DataType::Boolean => {
            let a = column.as_boolean();
            each(&mut |h, row| fnv(h, &[u8::from(a.value(row))]));
        }
        DataType::Utf8 => {
            let a = column.as_string::<i32>();
            each(&mut |h, row| with_len(h, a.value(row).as_bytes()));
        }
        DataType::LargeUtf8 => {
            let a = column.as_string::<i64>();
            each(&mut |h, row| with_len(h, a.value(row).as_bytes()));
        }
        DataType::Utf8View => {
            let a = column.as_string_view();
            each(&mut |h, row| with_len(h, a.value(row).as_bytes()));
        }
        DataType::Binary => {
            let a = column.as_binary::<i32>();
            each(&mut |h, row| with_len(h, a.value(row)));
        }
        DataType::LargeBinary => {
            let a = column.as_binary::<i64>();
            each(&mut |h, row| with_len(h, a.value(row)));
        }
        // The values, not their keys in this file's dictionary.
        DataType::Dictionary(_, value) => match arrow::compute::cast(column, value) {
            Ok(values) => hash_column(hashes, tag, &values),
            Err(_) => each(&mut |h, _| fnv(h, NULL)),
        },
        other => match other.primitive_width() {
            Some(width) => {
                let data = column.to_data();
                let values = &data.buffers()[0].as_slice()[data.offset() * width..];
                each(&mut |h, row| fnv(h, &values[row * width..(row + 1) * width]));
            }
            None => {
                // Nested and other types: their display form.
                each(&mut |h, row| {
                    let text = arrow::util::display::array_value_to_string(column, row)
                        .unwrap_or_default();
                    with_len(h, text.as_bytes());
                });
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(ids: &[i64], names: &[Option<&str>], v: &[f64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("v", DataType::Float64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names.to_vec())),
                Arc::new(Float64Array::from(v.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_digest_ignores_row_order_and_splitting_and_sees_any_change() {
        let all = batch(&[1, 2, 3], &[Some("a"), None, Some("c")], &[1.0, 2.0, 3.0]);
        let schema = all.schema();
        let whole = digest_batch(&all, &schema);
        assert_eq!(whole.rows, 3);
        // Other order, other split.
        let mut parts = digest_batch(&batch(&[3], &[Some("c")], &[3.0]), &schema);
        parts.add(digest_batch(
            &batch(&[2, 1], &[None, Some("a")], &[2.0, 1.0]),
            &schema,
        ));
        assert_eq!(parts, whole);
        // One value changed, a NULL for an empty string, values moved between columns: each
        // changes the hash.
        for other in [
            batch(&[1, 2, 3], &[Some("a"), None, Some("c")], &[1.0, 2.0, 3.5]),
            batch(
                &[1, 2, 3],
                &[Some("a"), Some(""), Some("c")],
                &[1.0, 2.0, 3.0],
            ),
            batch(&[1, 2, 3], &[Some("a"), None, Some("c")], &[2.0, 1.0, 3.0]),
        ] {
            let d = digest_batch(&other, &schema);
            assert_eq!(d.rows, 3);
            assert_ne!(d.hash, whole.hash);
        }
        // A duplicated row is not cancelled out.
        let dup = digest_batch(
            &batch(
                &[1, 1, 2, 3],
                &[Some("a"), Some("a"), None, Some("c")],
                &[1.0, 1.0, 2.0, 3.0],
            ),
            &schema,
        );
        assert_ne!(dup.hash, whole.hash);
    }
}
