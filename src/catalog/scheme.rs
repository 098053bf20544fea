//! Partition schemes (DolphinDB's VALUE, RANGE, LIST, HASH and their 2–3 level COMPO) and the
//! routing of rows to partitions.
//!
//! A partition is named by one component per level joined with `/`, as DolphinDB names its
//! partition paths: VALUE keys by value (`20230108` for a date, `202301M` for a month),
//! RANGE by `lower_upper`, LIST by `List<i>`, HASH by `Key<i>`. A NULL partition key gets
//! the component `NULL`: rows are never dropped for having one.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::{DataType, Date32Type, Int64Type, TimeUnit};
use serde::{Deserialize, Serialize};

use super::types::ColumnType;
use crate::sqlstate::{ErrorCode, SqlState};

/// One value of a partition domain, normalised to the unit of the level's key type
/// (days for DATE, months since year 0 for MONTH, seconds for DATETIME, ...).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyValue {
    Int(i64),
    Str(String),
}

/// One level of a partition scheme, as persisted in the controller's metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "UPPERCASE")]
pub enum PartitionLevel {
    Value {
        key_type: ColumnType,
        values: BTreeSet<KeyValue>,
    },
    Range {
        key_type: ColumnType,
        bounds: Vec<KeyValue>,
    },
    List {
        key_type: ColumnType,
        lists: Vec<Vec<KeyValue>>,
    },
    Hash {
        key_type: ColumnType,
        buckets: u32,
    },
}

/// What to do with a row whose VALUE-partition key is not yet in the domain
/// (`newValuePartitionPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NewValuePolicy {
    /// Extend the domain with the new values (the default here; DolphinDB's default is skip).
    #[default]
    Add,
    /// Fail the whole statement.
    Fail,
    /// Drop the rows, as DolphinDB's `skip` does.
    Skip,
}

/// Why rows could not be routed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteError {
    #[error("{count} row(s) have {column} values outside the partition scheme (first: {example})")]
    OutOfScheme {
        column: String,
        count: usize,
        example: String,
    },
    #[error("{count} row(s) have {column} values not in the VALUE partition domain (first: {example}) and newValuePartitionPolicy=fail")]
    NewValue {
        column: String,
        count: usize,
        example: String,
    },
    #[error("column {column} of type {column_type} cannot be partitioned by a {key_type} scheme")]
    Incompatible {
        column: String,
        column_type: String,
        key_type: ColumnType,
    },
    #[error("routing rows failed: {0}")]
    Arrow(String),
}

impl ErrorCode for RouteError {
    fn sqlstate(&self) -> SqlState {
        match self {
            RouteError::Incompatible { .. } => SqlState::DATATYPE_MISMATCH,
            RouteError::OutOfScheme { .. } | RouteError::NewValue { .. } | RouteError::Arrow(_) => {
                SqlState::CHECK_VIOLATION
            }
        }
    }

    fn retryable(&self) -> bool {
        false
    }
}

impl PartitionLevel {
    pub fn key_type(&self) -> ColumnType {
        match self {
            PartitionLevel::Value { key_type, .. }
            | PartitionLevel::Range { key_type, .. }
            | PartitionLevel::List { key_type, .. }
            | PartitionLevel::Hash { key_type, .. } => *key_type,
        }
    }

    /// DolphinDB's `partitionType` id (VALUE=1, RANGE=2, LIST=3, HASH=5).
    pub fn type_name(&self) -> &'static str {
        match self {
            PartitionLevel::Value { .. } => "VALUE",
            PartitionLevel::Range { .. } => "RANGE",
            PartitionLevel::List { .. } => "LIST",
            PartitionLevel::Hash { .. } => "HASH",
        }
    }

    /// Checks that a column of `column_type` can be routed by this level.
    pub fn check_column(&self, column: &str, column_type: ColumnType) -> Result<(), RouteError> {
        let incompatible = || RouteError::Incompatible {
            column: column.to_string(),
            column_type: column_type.to_string(),
            key_type: self.key_type(),
        };
        if !column_type.can_partition() {
            return Err(incompatible());
        }
        let key = self.key_type();
        let string_key = key_is_string(key);
        if string_key != key_is_string(column_type) {
            return Err(incompatible());
        }
        if !string_key
            && !arrow::compute::can_cast_types(&column_type.arrow_type(), &key_arrow_type(key))
        {
            return Err(incompatible());
        }
        Ok(())
    }

    /// Whether `component` names one of this level's partitions now, as [`route`] names them.
    pub fn names_partition(&self, component: &str) -> bool {
        if component == "NULL" {
            return true;
        }
        let numbered = |prefix: &str, count: usize| {
            component
                .strip_prefix(prefix)
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i < count && component == format!("{prefix}{i}"))
        };
        match self {
            PartitionLevel::Value { key_type, values } => {
                values.iter().any(|v| key_name(*key_type, v) == component)
            }
            PartitionLevel::Range { key_type, bounds } => bounds.windows(2).any(|w| {
                let name = |v| key_name(*key_type, v);
                format!("{}_{}", name(&w[0]), name(&w[1])) == component
            }),
            PartitionLevel::List { lists, .. } => numbered("List", lists.len()),
            PartitionLevel::Hash { buckets, .. } => numbered("Key", (*buckets as usize).max(1)),
        }
    }

    /// The number of partitions this level defines now (VALUE grows; HASH is fixed).
    pub fn partition_count(&self) -> usize {
        match self {
            PartitionLevel::Value { values, .. } => values.len(),
            PartitionLevel::Range { bounds, .. } => bounds.len().saturating_sub(1),
            PartitionLevel::List { lists, .. } => lists.len(),
            PartitionLevel::Hash { buckets, .. } => *buckets as usize,
        }
    }
}

fn key_is_string(t: ColumnType) -> bool {
    matches!(t, ColumnType::Symbol | ColumnType::String)
}

/// The Arrow type a level's keys are computed in before they become i64s.
fn key_arrow_type(key: ColumnType) -> DataType {
    match key {
        ColumnType::Month => DataType::Date32,
        ColumnType::Minute => DataType::Time32(TimeUnit::Second),
        other => other.arrow_type(),
    }
}

/// The per-row keys of one partition column in its level's unit.
enum Keys {
    Ints(Vec<Option<i64>>),
    Strs(ArrayRef),
}

fn column_keys(array: &ArrayRef, key: ColumnType) -> Result<Keys, RouteError> {
    let err = |e: arrow::error::ArrowError| RouteError::Arrow(e.to_string());
    if key_is_string(key) {
        return Ok(Keys::Strs(cast(array, &DataType::Utf8).map_err(err)?));
    }
    let typed = cast(array, &key_arrow_type(key)).map_err(err)?;
    let ints: Vec<Option<i64>> = match key {
        ColumnType::Month => typed
            .as_primitive::<Date32Type>()
            .iter()
            .map(|d| d.map(|d| month_of_day(d as i64)))
            .collect(),
        ColumnType::Minute => {
            let secs = cast(&typed, &DataType::Int64).map_err(err)?;
            secs.as_primitive::<Int64Type>()
                .iter()
                .map(|s| s.map(|s| s.div_euclid(60)))
                .collect()
        }
        _ => {
            let v = cast(&typed, &DataType::Int64).map_err(err)?;
            v.as_primitive::<Int64Type>().iter().collect()
        }
    };
    Ok(Keys::Ints(ints))
}

/// Months since year 0 (`year * 12 + month - 1`) of a day number since 1970-01-01.
pub fn month_of_day(days: i64) -> i64 {
    let (y, m, _) = civil_from_days(days);
    y * 12 + (m as i64 - 1)
}

pub use super::calendar::civil_from_days;

/// Renders a key the way DolphinDB names its partition directories.
pub fn key_name(key: ColumnType, value: &KeyValue) -> String {
    match value {
        KeyValue::Str(s) => s.clone(),
        KeyValue::Int(v) => match key {
            ColumnType::Date => {
                let (y, m, d) = civil_from_days(*v);
                format!("{y:04}{m:02}{d:02}")
            }
            ColumnType::Month => format!("{:04}{:02}M", v.div_euclid(12), v.rem_euclid(12) + 1),
            _ => v.to_string(),
        },
    }
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyValue::Int(v) => write!(f, "{v}"),
            KeyValue::Str(s) => write!(f, "{s}"),
        }
    }
}

/// Stable across processes and versions: partition placement depends on it.
fn hash_key(value: &KeyValue) -> u64 {
    match value {
        KeyValue::Int(v) => hash_int(*v),
        KeyValue::Str(s) => hash_str(s),
    }
}

/// [`hash_key`] of an integer key: FNV-1a over a type-tagged encoding.
fn hash_int(v: i64) -> u64 {
    fnv1a(fnv1a(FNV_OFFSET, b"i"), &v.to_le_bytes())
}

/// [`hash_key`] of a string key, without making a [`KeyValue`] of it.
fn hash_str(s: &str) -> u64 {
    fnv1a(fnv1a(FNV_OFFSET, b"s"), s.as_bytes())
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The rows of one batch that belong to one partition.
pub struct Routed {
    pub partition: String,
    pub batch: RecordBatch,
}

/// The result of routing a batch: per-partition batches, plus VALUE keys that are new to the
/// domain (per level) and must be added before the rows can be stored.
pub struct Routing {
    pub parts: Vec<Routed>,
    pub new_values: Vec<(usize, KeyValue)>,
    pub skipped_rows: usize,
}

/// Splits `batch` by the partition scheme into one batch per partition. `columns[i]` is the
/// index in `batch` of the partition column of level `i`, `names[i]` its name (for errors).
///
/// Each level gives every row the index of its partition component (a HASH level computes it
/// directly; the others once per distinct key, then the same component for every key it
/// covers); the levels' indices make one group per partition, and each group is taken out of
/// `batch` once. The cost is linear in the rows, however many distinct keys they have.
pub fn route(
    levels: &[PartitionLevel],
    columns: &[usize],
    names: &[String],
    batch: &RecordBatch,
    policy: NewValuePolicy,
) -> Result<Routing, RouteError> {
    const SKIP: u32 = u32::MAX;
    let rows = batch.num_rows();
    let mut new_values = Vec::new();
    // Per level: each row's component index into that level's names (SKIP: row dropped).
    let mut level_ids: Vec<Vec<u32>> = Vec::with_capacity(levels.len());
    let mut level_components: Vec<Vec<String>> = Vec::with_capacity(levels.len());
    for (li, level) in levels.iter().enumerate() {
        let keys = column_keys(batch.column(columns[li]), level.key_type())?;
        let strings = match &keys {
            Keys::Strs(a) => Some(a.as_string::<i32>()),
            Keys::Ints(_) => None,
        };
        if let PartitionLevel::Hash { buckets, .. } = level {
            // Bucket `i` is component `i`; NULL is the last one.
            let buckets = (*buckets as u64).max(1);
            let ids = (0..rows)
                .map(|row| {
                    let hash = match (&keys, strings) {
                        (Keys::Ints(v), _) => v[row].map(hash_int),
                        (_, Some(a)) => (!a.is_null(row)).then(|| hash_str(a.value(row))),
                        _ => None,
                    };
                    hash.map_or(buckets, |h| h % buckets) as u32
                })
                .collect();
            let mut components: Vec<String> = (0..buckets).map(|i| format!("Key{i}")).collect();
            components.push("NULL".to_string());
            level_ids.push(ids);
            level_components.push(components);
            continue;
        }
        let mut ids = Vec::with_capacity(rows);
        // Per distinct key its component's index; per component name its index, so the keys
        // of one partition share it.
        let mut names_of: HashMap<Option<KeyValue>, u32> = HashMap::new();
        let mut component_ids: HashMap<String, u32> = HashMap::new();
        let mut components: Vec<String> = Vec::new();
        let mut bad: Option<(usize, String)> = None;
        let mut new_in_level: BTreeSet<KeyValue> = BTreeSet::new();
        // Rows usually arrive clustered by partition: remember the last key's answer.
        let mut last: Option<(Option<KeyValue>, u32)> = None;
        for row in 0..rows {
            let key = match (&keys, strings) {
                (Keys::Ints(v), _) => v[row].map(KeyValue::Int),
                (_, Some(a)) => (!a.is_null(row)).then(|| KeyValue::Str(a.value(row).to_string())),
                _ => None,
            };
            if let Some((k, id)) = &last {
                if *k == key {
                    ids.push(*id);
                    continue;
                }
            }
            let id = match names_of.get(&key) {
                Some(&id) => id,
                None => {
                    let component = match &key {
                        None => Some("NULL".to_string()),
                        Some(k) => match level {
                            PartitionLevel::Value { key_type, values } => {
                                if values.contains(k) {
                                    Some(key_name(*key_type, k))
                                } else {
                                    match policy {
                                        NewValuePolicy::Add => {
                                            new_in_level.insert(k.clone());
                                            Some(key_name(*key_type, k))
                                        }
                                        NewValuePolicy::Skip => {
                                            names_of.insert(key.clone(), SKIP);
                                            ids.push(SKIP);
                                            last = Some((key, SKIP));
                                            continue;
                                        }
                                        NewValuePolicy::Fail => None,
                                    }
                                }
                            }
                            PartitionLevel::Range { key_type, bounds } => {
                                let i = bounds.partition_point(|b| b <= k);
                                (i > 0 && i < bounds.len()).then(|| {
                                    format!(
                                        "{}_{}",
                                        key_name(*key_type, &bounds[i - 1]),
                                        key_name(*key_type, &bounds[i])
                                    )
                                })
                            }
                            PartitionLevel::List { lists, .. } => lists
                                .iter()
                                .position(|l| l.contains(k))
                                .map(|i| format!("List{i}")),
                            PartitionLevel::Hash { buckets, .. } => {
                                Some(format!("Key{}", hash_key(k) % (*buckets as u64).max(1)))
                            }
                        },
                    };
                    match component {
                        Some(c) => {
                            let id = *component_ids.entry(c).or_insert_with_key(|c| {
                                components.push(c.clone());
                                components.len() as u32 - 1
                            });
                            names_of.insert(key.clone(), id);
                            id
                        }
                        None => {
                            let count = bad.as_ref().map_or(0, |b| b.0) + 1;
                            let example = bad.take().map(|b| b.1).unwrap_or_else(|| {
                                key.as_ref()
                                    .map(|k| key_name(level.key_type(), k))
                                    .unwrap_or_default()
                            });
                            bad = Some((count, example));
                            SKIP
                        }
                    }
                }
            };
            ids.push(id);
            last = Some((key, id));
        }
        if let Some((count, example)) = bad {
            let column = names[li].clone();
            return Err(match level {
                PartitionLevel::Value { .. } => RouteError::NewValue {
                    column,
                    count,
                    example,
                },
                _ => RouteError::OutOfScheme {
                    column,
                    count,
                    example,
                },
            });
        }
        new_values.extend(new_in_level.into_iter().map(|k| (li, k)));
        level_ids.push(ids);
        level_components.push(components);
    }

    // Combine the levels' component indices into one number per row (mixed radix: a level's
    // digit is below its component count) and group the rows by it.
    let mut radix: Vec<u128> = Vec::with_capacity(levels.len());
    let mut place: u128 = 1;
    for components in &level_components {
        radix.push(place);
        place = place
            .checked_mul(components.len().max(1) as u128)
            .ok_or_else(|| RouteError::Arrow("too many partition levels".into()))?;
    }
    let mut paths: Vec<u128> = Vec::new();
    let mut path_of: HashMap<u128, usize> = HashMap::new();
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut skipped_rows = 0;
    let mut last: Option<(u128, usize)> = None;
    'rows: for row in 0..rows {
        let mut path: u128 = 0;
        for (ids, r) in level_ids.iter().zip(&radix) {
            let id = ids[row];
            if id == SKIP {
                skipped_rows += 1;
                continue 'rows;
            }
            path += id as u128 * r;
        }
        let group = match last {
            Some((p, g)) if p == path => g,
            _ => {
                let g = *path_of.entry(path).or_insert_with(|| {
                    paths.push(path);
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                last = Some((path, g));
                g
            }
        };
        groups[group].push(row as u32);
    }
    let mut parts = Vec::with_capacity(groups.len());
    for (path, indices) in paths.iter().zip(groups) {
        let partition = level_components
            .iter()
            .zip(&radix)
            .map(|(components, r)| {
                let digit = (path / r) % components.len().max(1) as u128;
                components[digit as usize].as_str()
            })
            .collect::<Vec<_>>()
            .join("/");
        let batch = if indices.len() == rows {
            batch.clone()
        } else {
            take_record_batch(batch, &UInt32Array::from(indices))
                .map_err(|e| RouteError::Arrow(e.to_string()))?
        };
        parts.push(Routed { partition, batch });
    }
    parts.sort_by(|a, b| a.partition.cmp(&b.partition));
    Ok(Routing {
        parts,
        new_values,
        skipped_rows,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, StringArray, TimestampSecondArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("sym", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), true),
            Field::new("v", DataType::Int32, true),
        ]));
        // 2023-01-08 09:30:00 = 1673170200
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![
                    Some("A"),
                    Some("B"),
                    None,
                    Some("A"),
                ])),
                Arc::new(TimestampSecondArray::from(vec![
                    Some(1673170200),
                    Some(1673170200 + 86400),
                    Some(1673170200),
                    None,
                ])),
                Arc::new(Int32Array::from(vec![1, 7, 3, 12])),
            ],
        )
        .unwrap()
    }

    fn day(d: i64) -> KeyValue {
        KeyValue::Int(d)
    }

    #[test]
    fn value_by_day_adds_new_days_and_keeps_nulls() {
        let level = PartitionLevel::Value {
            key_type: ColumnType::Date,
            values: [day(19365)].into_iter().collect(), // 2023-01-08
        };
        let r = route(
            &[level],
            &[1],
            &["ts".into()],
            &batch(),
            NewValuePolicy::Add,
        )
        .unwrap();
        let names: Vec<_> = r.parts.iter().map(|p| p.partition.as_str()).collect();
        assert_eq!(names, vec!["20230108", "20230109", "NULL"]);
        assert_eq!(r.new_values, vec![(0, day(19366))]);
        assert_eq!(r.parts[0].batch.num_rows(), 2);
    }

    #[test]
    fn value_policy_fail_and_skip() {
        let level = PartitionLevel::Value {
            key_type: ColumnType::Date,
            values: [day(19365)].into_iter().collect(),
        };
        let names = ["ts".to_string()];
        let err = route(
            std::slice::from_ref(&level),
            &[1],
            &names,
            &batch(),
            NewValuePolicy::Fail,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("20230109"), "{err}");
        let r = route(&[level], &[1], &names, &batch(), NewValuePolicy::Skip).unwrap();
        assert_eq!(r.skipped_rows, 1);
    }

    #[test]
    fn range_rejects_out_of_range_rows() {
        let level = PartitionLevel::Range {
            key_type: ColumnType::Int,
            bounds: vec![KeyValue::Int(0), KeyValue::Int(5), KeyValue::Int(10)],
        };
        let err = route(&[level], &[2], &["v".into()], &batch(), NewValuePolicy::Add)
            .err()
            .unwrap();
        assert!(
            matches!(err, RouteError::OutOfScheme { count: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn compo_hash_and_list() {
        let levels = vec![
            PartitionLevel::List {
                key_type: ColumnType::Symbol,
                lists: vec![
                    vec![KeyValue::Str("A".into())],
                    vec![KeyValue::Str("B".into())],
                ],
            },
            PartitionLevel::Hash {
                key_type: ColumnType::Int,
                buckets: 3,
            },
        ];
        let r = route(
            &levels,
            &[0, 2],
            &["sym".into(), "v".into()],
            &batch(),
            NewValuePolicy::Add,
        )
        .unwrap();
        let total: usize = r.parts.iter().map(|p| p.batch.num_rows()).sum();
        assert_eq!(total, 4);
        assert!(r.parts.iter().all(|p| p.partition.contains("/Key")));
        assert!(r.parts.iter().any(|p| p.partition.starts_with("NULL/")));
        // Every name the router gives is in the domain, and nothing else is.
        let db = crate::catalog::DatabaseDef {
            name: "dfs://d".into(),
            id: 1,
            levels: levels.clone(),
            engine: "OLAP".into(),
            owner: "admin".into(),
            created_ms: 0,
            placement: vec![1, 2],
        };
        for p in &r.parts {
            assert!(db.has_partition(&p.partition), "{}", p.partition);
        }
        for name in [
            "List2/Key0",
            "List0/Key3",
            "List0",
            "List0/Key0/x",
            "List01/Key0",
        ] {
            assert!(!db.has_partition(name), "{name}");
        }
    }

    /// A row of the random test's batch: `sym` and `v`.
    type Row = (Option<String>, Option<i32>);

    /// The partition of one row's keys, computed from the scheme's definition alone.
    fn expected_component(level: &PartitionLevel, key: Option<KeyValue>) -> String {
        let Some(k) = key else {
            return "NULL".into();
        };
        match level {
            PartitionLevel::Value { key_type, .. } => key_name(*key_type, &k),
            PartitionLevel::Range { key_type, bounds } => {
                let i = bounds.iter().rposition(|b| *b <= k).unwrap();
                format!(
                    "{}_{}",
                    key_name(*key_type, &bounds[i]),
                    key_name(*key_type, &bounds[i + 1])
                )
            }
            PartitionLevel::List { lists, .. } => {
                format!("List{}", lists.iter().position(|l| l.contains(&k)).unwrap())
            }
            PartitionLevel::Hash { buckets, .. } => {
                format!("Key{}", hash_key(&k) % *buckets as u64)
            }
        }
    }

    #[test]
    fn random_rows_get_one_batch_per_partition_and_the_partition_of_their_keys() {
        // A fixed linear congruential sequence: the same rows every run.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        let rows = 5000;
        let syms: Vec<Option<String>> = (0..rows)
            .map(|_| match next(50) {
                0 => None,
                i => Some(format!("S{}", next(1000) + i)),
            })
            .collect();
        let ints: Vec<Option<i32>> = (0..rows)
            .map(|_| (next(20) != 0).then(|| next(100_000) as i32))
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("sym", DataType::Utf8, true),
            Field::new("v", DataType::Int32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(syms.clone())),
                Arc::new(Int32Array::from(ints.clone())),
            ],
        )
        .unwrap();
        let bounds = (0..=10).map(|i| KeyValue::Int(i * 10_000)).collect();
        let schemes = vec![
            vec![PartitionLevel::Hash {
                key_type: ColumnType::Symbol,
                buckets: 7,
            }],
            vec![
                PartitionLevel::Range {
                    key_type: ColumnType::Int,
                    bounds,
                },
                PartitionLevel::Hash {
                    key_type: ColumnType::Symbol,
                    buckets: 3,
                },
            ],
            vec![
                PartitionLevel::Value {
                    key_type: ColumnType::Symbol,
                    values: BTreeSet::new(),
                },
                PartitionLevel::Hash {
                    key_type: ColumnType::Int,
                    buckets: 4,
                },
            ],
        ];
        for levels in schemes {
            let columns: Vec<usize> = levels
                .iter()
                .map(|l| usize::from(matches!(l.key_type(), ColumnType::Int)))
                .collect();
            let names: Vec<String> = columns.iter().map(|c| format!("c{c}")).collect();
            let r = route(&levels, &columns, &names, &batch, NewValuePolicy::Add).unwrap();
            let mut want: HashMap<String, Vec<Row>> = HashMap::new();
            for row in 0..rows {
                let name = levels
                    .iter()
                    .zip(&columns)
                    .map(|(level, c)| {
                        let key = match c {
                            0 => syms[row].clone().map(KeyValue::Str),
                            _ => ints[row].map(|v| KeyValue::Int(v as i64)),
                        };
                        expected_component(level, key)
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                want.entry(name)
                    .or_default()
                    .push((syms[row].clone(), ints[row]));
            }
            assert_eq!(r.parts.len(), want.len(), "one batch per partition");
            for part in &r.parts {
                let b = &part.batch;
                let sym = b.column(0).as_string::<i32>();
                let v = b.column(1).as_primitive::<arrow::datatypes::Int32Type>();
                let got: Vec<_> = (0..b.num_rows())
                    .map(|i| {
                        let s = (!sym.is_null(i)).then(|| sym.value(i).to_string());
                        (s, (!v.is_null(i)).then(|| v.value(i)))
                    })
                    .collect();
                assert_eq!(Some(&got), want.get(&part.partition), "{}", part.partition);
            }
        }
    }

    #[test]
    fn value_and_range_names_are_in_the_domain_until_they_are_not() {
        let value = PartitionLevel::Value {
            key_type: ColumnType::Date,
            values: [day(19365)].into_iter().collect(),
        };
        assert!(value.names_partition("20230108"));
        assert!(!value.names_partition("20230109"));
        let range = PartitionLevel::Range {
            key_type: ColumnType::Int,
            bounds: vec![KeyValue::Int(0), KeyValue::Int(5), KeyValue::Int(10)],
        };
        assert!(range.names_partition("0_5") && range.names_partition("5_10"));
        assert!(!range.names_partition("0_10"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19365), (2023, 1, 8));
        assert_eq!(
            key_name(ColumnType::Month, &KeyValue::Int(2023 * 12)),
            "202301M"
        );
    }
}
