//! Partition schemes (DolphinDB's VALUE, RANGE, LIST, HASH and their 2–3 level COMPO) and the
//! routing of rows to partitions.
//!
//! A partition is named by one component per level joined with `/`, as DolphinDB names its
//! partition paths: VALUE keys by value (`20230108` for a date, `202301M` for a month),
//! RANGE by `lower_upper`, LIST by `List<i>`, HASH by `Key<i>`. A NULL partition key gets
//! the component `NULL`: rows are never dropped for having one.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, UInt32Array};
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

/// The keys of one partition column in its level's unit (days for DATE, months since year 0
/// for MONTH, minutes for MINUTE, ...), NULLs kept.
enum Keys {
    Ints(Int64Array),
    Strs(StringArray),
}

/// One row's key, borrowed from [`Keys`] (or from a level's definition, to compare with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key<'a> {
    Int(i64),
    Str(&'a str),
}

impl Keys {
    fn get(&self, row: usize) -> Option<Key<'_>> {
        match self {
            Keys::Ints(a) => (!a.is_null(row)).then(|| Key::Int(a.value(row))),
            Keys::Strs(a) => (!a.is_null(row)).then(|| Key::Str(a.value(row))),
        }
    }
}

impl<'a> Key<'a> {
    fn of(value: &'a KeyValue) -> Self {
        match value {
            KeyValue::Int(v) => Key::Int(*v),
            KeyValue::Str(s) => Key::Str(s),
        }
    }

    fn to_value(self) -> KeyValue {
        match self {
            Key::Int(v) => KeyValue::Int(v),
            Key::Str(s) => KeyValue::Str(s.to_string()),
        }
    }

    /// `bound <= self` as [`KeyValue`]'s order has it (every integer before every string).
    fn at_or_above(self, bound: &KeyValue) -> bool {
        match (bound, self) {
            (KeyValue::Int(b), Key::Int(k)) => *b <= k,
            (KeyValue::Str(b), Key::Str(k)) => b.as_str() <= k,
            (KeyValue::Int(_), Key::Str(_)) => true,
            (KeyValue::Str(_), Key::Int(_)) => false,
        }
    }

    /// The key's hash: FNV-1a over a type-tagged encoding. Stable across processes and
    /// versions: HASH partitions, and so where rows are stored, depend on it.
    fn hash(self) -> u64 {
        match self {
            Key::Int(v) => fnv1a(fnv1a(FNV_OFFSET, b"i"), &v.to_le_bytes()),
            Key::Str(s) => fnv1a(fnv1a(FNV_OFFSET, b"s"), s.as_bytes()),
        }
    }
}

fn column_keys(array: &ArrayRef, key: ColumnType) -> Result<Keys, RouteError> {
    let err = |e: arrow::error::ArrowError| RouteError::Arrow(e.to_string());
    if key_is_string(key) {
        let strings = cast(array, &DataType::Utf8).map_err(err)?;
        return Ok(Keys::Strs(strings.as_string::<i32>().clone()));
    }
    let typed = cast(array, &key_arrow_type(key)).map_err(err)?;
    // `unary` computes under the NULL slots too, on whatever value they hold: both functions
    // are total.
    let ints = match key {
        ColumnType::Month => typed
            .as_primitive::<Date32Type>()
            .unary(|d| month_of_day(d as i64)),
        ColumnType::Minute => cast(&typed, &DataType::Int64)
            .map_err(err)?
            .as_primitive::<Int64Type>()
            .unary(|s: i64| s.div_euclid(60)),
        _ => cast(&typed, &DataType::Int64)
            .map_err(err)?
            .as_primitive::<Int64Type>()
            .clone(),
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

/// A row without a component at a level: dropped by `newValuePartitionPolicy=skip`, or fitting
/// no partition (the batch is then refused).
const SKIP: u32 = u32::MAX;

/// Rows whose keys fit no partition of a level: how many, and the first one's key.
#[derive(Default)]
struct Misfits {
    count: usize,
    example: Option<String>,
}

impl Misfits {
    fn add(&mut self, key_type: ColumnType, key: Key<'_>) -> u32 {
        self.count += 1;
        if self.example.is_none() {
            self.example = Some(key_name(key_type, &key.to_value()));
        }
        SKIP
    }
}

/// One level's answer for a batch: per row the index of its component in `components`
/// (or [`SKIP`]), and the VALUE keys new to the domain.
struct LevelRoute {
    ids: Vec<u32>,
    components: Vec<String>,
    new_values: BTreeSet<KeyValue>,
}

impl LevelRoute {
    /// Gives every row its component in one pass over `keys`: HASH, RANGE and LIST compute it
    /// from the key alone (a bucket, a binary search of the bounds, a lookup in a map built from
    /// the lists); VALUE names a component once per distinct key of the batch, as each distinct
    /// key is a partition of its own.
    fn new(
        level: &PartitionLevel,
        keys: &Keys,
        rows: usize,
        policy: NewValuePolicy,
        misfits: &mut Misfits,
    ) -> Self {
        let key_type = level.key_type();
        let mut new_values = BTreeSet::new();
        let (ids, components) = match level {
            PartitionLevel::Hash { buckets, .. } => {
                // Bucket `i` is component `i`; NULL is the last one.
                let buckets = u64::from((*buckets).max(1));
                let ids = (0..rows)
                    .map(|row| keys.get(row).map_or(buckets, |k| k.hash() % buckets) as u32)
                    .collect();
                let names = (0..buckets).map(|i| format!("Key{i}"));
                (ids, names.chain(["NULL".to_string()]).collect())
            }
            PartitionLevel::Range { bounds, .. } => {
                // Range `i` (from `bounds[i]` up to `bounds[i + 1]`) is component `i`; NULL is
                // the last one.
                let ranges = bounds.len().saturating_sub(1);
                let ids = (0..rows)
                    .map(|row| match keys.get(row) {
                        None => ranges as u32,
                        Some(k) => match bounds.partition_point(|b| k.at_or_above(b)) {
                            i if i > 0 && i < bounds.len() => (i - 1) as u32,
                            _ => misfits.add(key_type, k),
                        },
                    })
                    .collect();
                let names = bounds.windows(2).map(|w| {
                    format!(
                        "{}_{}",
                        key_name(key_type, &w[0]),
                        key_name(key_type, &w[1])
                    )
                });
                (ids, names.chain(["NULL".to_string()]).collect())
            }
            PartitionLevel::List { lists, .. } => {
                // List `i` is component `i`; NULL is the last one. A key in two lists belongs
                // to the first.
                let mut list_of: HashMap<Key<'_>, u32> = HashMap::new();
                for (i, list) in lists.iter().enumerate() {
                    for v in list {
                        list_of.entry(Key::of(v)).or_insert(i as u32);
                    }
                }
                let ids = (0..rows)
                    .map(|row| match keys.get(row) {
                        None => lists.len() as u32,
                        Some(k) => match list_of.get(&k) {
                            Some(&i) => i,
                            None => misfits.add(key_type, k),
                        },
                    })
                    .collect();
                let names = (0..lists.len()).map(|i| format!("List{i}"));
                (ids, names.chain(["NULL".to_string()]).collect())
            }
            PartitionLevel::Value { values, .. } => {
                let mut component_of: HashMap<Option<Key<'_>>, u32> = HashMap::new();
                let mut components: Vec<String> = Vec::new();
                let mut ids = Vec::with_capacity(rows);
                // Rows usually arrive clustered by partition: the last key's answer first.
                let mut last: Option<(Option<Key<'_>>, u32)> = None;
                for row in 0..rows {
                    let key = keys.get(row);
                    let known = match last {
                        Some((k, id)) if k == key => Some(id),
                        _ => component_of.get(&key).copied(),
                    };
                    let id = match known {
                        Some(id) => id,
                        None => {
                            let name = match key {
                                None => Some("NULL".to_string()),
                                Some(k) => {
                                    let value = k.to_value();
                                    if values.contains(&value) {
                                        Some(key_name(key_type, &value))
                                    } else if policy == NewValuePolicy::Add {
                                        let name = key_name(key_type, &value);
                                        new_values.insert(value);
                                        Some(name)
                                    } else {
                                        None
                                    }
                                }
                            };
                            let id = match name {
                                Some(name) => {
                                    components.push(name);
                                    components.len() as u32 - 1
                                }
                                None => SKIP,
                            };
                            component_of.insert(key, id);
                            id
                        }
                    };
                    if let (SKIP, Some(k), NewValuePolicy::Fail) = (id, key, policy) {
                        misfits.add(key_type, k);
                    }
                    ids.push(id);
                    last = Some((key, id));
                }
                (ids, components)
            }
        };
        LevelRoute {
            ids,
            components,
            new_values,
        }
    }
}

/// Splits `batch` by the partition scheme into one batch per partition. `columns[i]` is the
/// index in `batch` of the partition column of level `i`, `names[i]` its name (for errors).
///
/// Each level gives every row the index of its partition component ([`LevelRoute::new`]);
/// the levels' indices combine into one number per row (mixed radix), which indexes the
/// row's group directly; each group is taken out of `batch` once. The cost is linear in the
/// rows, whatever the number of distinct keys.
pub fn route(
    levels: &[PartitionLevel],
    columns: &[usize],
    names: &[String],
    batch: &RecordBatch,
    policy: NewValuePolicy,
) -> Result<Routing, RouteError> {
    let rows = batch.num_rows();
    let mut new_values = Vec::new();
    let mut level_routes: Vec<LevelRoute> = Vec::with_capacity(levels.len());
    for (li, level) in levels.iter().enumerate() {
        let keys = column_keys(batch.column(columns[li]), level.key_type())?;
        let mut misfits = Misfits::default();
        let level_route = LevelRoute::new(level, &keys, rows, policy, &mut misfits);
        if misfits.count > 0 {
            let column = names[li].clone();
            let (count, example) = (misfits.count, misfits.example.unwrap_or_default());
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
        new_values.extend(level_route.new_values.iter().map(|k| (li, k.clone())));
        level_routes.push(level_route);
    }

    // A row's partition number: its levels' component indices as the digits of a mixed-radix
    // number (a level's digit is below its component count).
    let mut radix: Vec<u128> = Vec::with_capacity(levels.len());
    let mut place: u128 = 1;
    for l in &level_routes {
        radix.push(place);
        place = place
            .checked_mul(l.components.len().max(1) as u128)
            .ok_or_else(|| RouteError::Arrow("too many partitions in one batch".into()))?;
    }
    // The group of each partition number: a table indexed by it when it is small (always for
    // one HASH, RANGE or LIST level), else a map.
    const NONE: u32 = u32::MAX;
    let dense = place <= (rows as u128).max(1024) * 4;
    let mut slot: Vec<u32> = if dense {
        vec![NONE; place as usize]
    } else {
        Vec::new()
    };
    let mut slot_map: HashMap<u128, u32> = HashMap::new();
    let mut paths: Vec<u128> = Vec::new();
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut skipped_rows = 0;
    'rows: for row in 0..rows {
        let mut path: u128 = 0;
        for (l, r) in level_routes.iter().zip(&radix) {
            let id = l.ids[row];
            if id == SKIP {
                skipped_rows += 1;
                continue 'rows;
            }
            path += u128::from(id) * r;
        }
        let g = if dense {
            &mut slot[path as usize]
        } else {
            slot_map.entry(path).or_insert(NONE)
        };
        if *g == NONE {
            *g = groups.len() as u32;
            paths.push(path);
            groups.push(Vec::new());
        }
        groups[*g as usize].push(row as u32);
    }
    let mut parts: Vec<Routed> = Vec::with_capacity(groups.len());
    for (path, indices) in paths.iter().zip(groups) {
        let partition = level_routes
            .iter()
            .zip(&radix)
            .map(|(l, r)| {
                let digit = (path / r) % l.components.len().max(1) as u128;
                l.components[digit as usize].as_str()
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
    use std::collections::BTreeMap;
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
                format!("Key{}", Key::of(&k).hash() % *buckets as u64)
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

    /// FNV-1a written out again, so the tests pin the hash HASH partitions depend on.
    fn reference_hash(key: &KeyValue) -> u64 {
        let (tag, bytes) = match key {
            KeyValue::Int(v) => (b'i', v.to_le_bytes().to_vec()),
            KeyValue::Str(s) => (b's', s.as_bytes().to_vec()),
        };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in std::iter::once(tag).chain(bytes) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }

    #[test]
    fn hash_buckets_do_not_change() {
        // Rows already stored, and slaves replicating them, depend on these buckets.
        let cases = [
            (KeyValue::Int(0), 0x5b37_837b_c82b_a6a4_u64),
            (KeyValue::Int(42), 0xb1aa_68b4_d79b_47ce),
            (KeyValue::Int(-1), 0xcd84_8774_fe98_3d1c),
            (KeyValue::Str("AAPL".into()), 0x11ed_da1a_3991_a16c),
            (KeyValue::Str(String::new()), 0xaf63_ee4c_8602_0b22),
            (KeyValue::Str("000001".into()), 0xddf1_708d_a552_da25),
        ];
        for (key, hash) in cases {
            assert_eq!(Key::of(&key).hash(), hash, "{key:?}");
            assert_eq!(reference_hash(&key), hash, "{key:?}");
        }
        let level = PartitionLevel::Hash {
            key_type: ColumnType::Int,
            buckets: 7,
        };
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int32, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Int32Array::from(vec![
                Some(0),
                Some(42),
                Some(-1),
                None,
            ]))],
        )
        .unwrap();
        let r = route(&[level], &[0], &["k".into()], &batch, NewValuePolicy::Add).unwrap();
        let got: Vec<(&str, usize)> = r
            .parts
            .iter()
            .map(|p| (p.partition.as_str(), p.batch.num_rows()))
            .collect();
        // 0 → 5, 42 → 0, -1 → 3 (mod 7).
        assert_eq!(
            got,
            vec![("Key0", 1), ("Key3", 1), ("Key5", 1), ("NULL", 1)]
        );
    }

    /// Why the reference refused a batch: the level, whether it was a VALUE level, the number
    /// of rows and the first one's key.
    type RefusedBy = (usize, bool, usize, String);

    /// What [`route`] should give, worked out row by row from the definition of each scheme,
    /// with keys converted by hand: partition name → row indices, new VALUE keys per level,
    /// skipped rows.
    #[allow(clippy::type_complexity)]
    fn reference_route(
        levels: &[PartitionLevel],
        keys: &[Vec<Option<KeyValue>>],
        rows: usize,
        policy: NewValuePolicy,
    ) -> Result<(BTreeMap<String, Vec<u32>>, Vec<(usize, KeyValue)>, usize), RefusedBy> {
        let mut names: Vec<Vec<Option<String>>> = Vec::new();
        let mut new_values = Vec::new();
        for (li, level) in levels.iter().enumerate() {
            let mut bad: Vec<String> = Vec::new();
            let mut new_in_level = BTreeSet::new();
            let level_names: Vec<Option<String>> = (0..rows)
                .map(|row| {
                    let Some(k) = keys[li][row].clone() else {
                        return Some("NULL".to_string());
                    };
                    let name = |v: &KeyValue| key_name(level.key_type(), v);
                    match level {
                        PartitionLevel::Hash { buckets, .. } => {
                            Some(format!("Key{}", reference_hash(&k) % u64::from(*buckets)))
                        }
                        PartitionLevel::Range { bounds, .. } => {
                            match bounds.iter().rposition(|b| *b <= k) {
                                Some(i) if i + 1 < bounds.len() => {
                                    Some(format!("{}_{}", name(&bounds[i]), name(&bounds[i + 1])))
                                }
                                _ => {
                                    bad.push(name(&k));
                                    None
                                }
                            }
                        }
                        PartitionLevel::List { lists, .. } => {
                            match lists.iter().position(|l| l.contains(&k)) {
                                Some(i) => Some(format!("List{i}")),
                                None => {
                                    bad.push(name(&k));
                                    None
                                }
                            }
                        }
                        PartitionLevel::Value { values, .. } => {
                            if values.contains(&k) {
                                return Some(name(&k));
                            }
                            match policy {
                                NewValuePolicy::Add => {
                                    new_in_level.insert(k.clone());
                                    Some(name(&k))
                                }
                                NewValuePolicy::Skip => None,
                                NewValuePolicy::Fail => {
                                    bad.push(name(&k));
                                    None
                                }
                            }
                        }
                    }
                })
                .collect();
            if let Some(first) = bad.first() {
                let is_value = matches!(level, PartitionLevel::Value { .. });
                return Err((li, is_value, bad.len(), first.clone()));
            }
            new_values.extend(new_in_level.into_iter().map(|k| (li, k)));
            names.push(level_names);
        }
        let mut parts: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        let mut skipped = 0;
        for row in 0..rows {
            let path: Option<Vec<String>> = names.iter().map(|n| n[row].clone()).collect();
            match path {
                Some(p) => parts.entry(p.join("/")).or_default().push(row as u32),
                None => skipped += 1,
            }
        }
        Ok((parts, new_values, skipped))
    }

    /// Routes `batch` both ways and compares everything: partitions in order, their rows,
    /// new VALUE keys, skipped rows, and for a refused batch the error's kind, count and example.
    fn assert_routes_like_reference(
        levels: &[PartitionLevel],
        columns: &[usize],
        keys: &[Vec<Option<KeyValue>>],
        batch: &RecordBatch,
        policy: NewValuePolicy,
    ) {
        let names: Vec<String> = columns.iter().map(|c| format!("c{c}")).collect();
        let got = route(levels, columns, &names, batch, policy);
        let want = reference_route(levels, keys, batch.num_rows(), policy);
        // The levels by kind and column (a LIST's Debug runs to pages).
        let kinds: Vec<String> = levels
            .iter()
            .zip(columns)
            .map(|(l, c)| format!("{}({}) on c{c}", l.type_name(), l.key_type()))
            .collect();
        let scheme = format!("{} {policy:?}", kinds.join(", "));
        match (got, want) {
            (Ok(got), Ok((parts, new_values, skipped))) => {
                let got_names: Vec<&str> = got.parts.iter().map(|p| p.partition.as_str()).collect();
                let want_names: Vec<&str> = parts.keys().map(String::as_str).collect();
                assert_eq!(got_names, want_names, "{scheme}");
                for (part, rows) in got.parts.iter().zip(parts.values()) {
                    let want = take_record_batch(batch, &UInt32Array::from(rows.clone())).unwrap();
                    assert_eq!(part.batch, want, "{scheme}: {}", part.partition);
                }
                assert_eq!(got.new_values, new_values, "{scheme}");
                assert_eq!(got.skipped_rows, skipped, "{scheme}");
            }
            (Err(e), Err((li, is_value, count, example))) => {
                let column = names[li].clone();
                let want = if is_value {
                    RouteError::NewValue {
                        column,
                        count,
                        example,
                    }
                } else {
                    RouteError::OutOfScheme {
                        column,
                        count,
                        example,
                    }
                };
                assert_eq!(e, want, "{scheme}");
                assert_eq!(e.sqlstate(), SqlState::CHECK_VIOLATION);
            }
            (got, want) => panic!(
                "{scheme}: route gave {:?}, the reference {:?}",
                got.map(|r| r.parts.len()),
                want.map(|w| w.0.len())
            ),
        }
    }

    #[test]
    fn routing_matches_a_row_by_row_reference_for_every_scheme() {
        // A fixed linear congruential sequence: the same rows every run.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        let rows = 20_000;
        // An INT with many distinct values (mostly unique), some NULL, some below 0 and at or
        // above 100,000 (outside the RANGE bounds and the LIST values below); a SYMBOL with a
        // few hundred values; timestamps over 40 days of 2023; dates over two years.
        let ints: Vec<Option<i32>> = (0..rows)
            .map(|_| match next(40) {
                0 => None,
                1 => Some(-(next(50) as i32) - 1),
                2 => Some(100_000 + next(50) as i32),
                _ => Some(next(100_000) as i32),
            })
            .collect();
        let syms: Vec<Option<String>> = (0..rows)
            .map(|_| (next(30) != 0).then(|| format!("S{:03}", next(400))))
            .collect();
        let day0: i64 = 19358; // 2023-01-01
        let secs: Vec<Option<i64>> = (0..rows)
            .map(|_| {
                (next(25) != 0).then(|| (day0 + next(40) as i64) * 86_400 + next(86_400) as i64)
            })
            .collect();
        let dates: Vec<Option<i32>> = (0..rows)
            .map(|_| (next(25) != 0).then(|| (day0 + next(730) as i64) as i32))
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int32, true),
            Field::new("sym", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), true),
            Field::new("d", DataType::Date32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(ints.clone())),
                Arc::new(StringArray::from(syms.clone())),
                Arc::new(TimestampSecondArray::from(secs.clone())),
                Arc::new(arrow::array::Date32Array::from(dates.clone())),
            ],
        )
        .unwrap();
        // Each column's keys in the unit of the level that routes it, converted by hand.
        let int_keys: Vec<Option<KeyValue>> = ints
            .iter()
            .map(|v| v.map(|v| KeyValue::Int(v.into())))
            .collect();
        let sym_keys: Vec<Option<KeyValue>> =
            syms.iter().map(|s| s.clone().map(KeyValue::Str)).collect();
        let day_keys: Vec<Option<KeyValue>> = secs
            .iter()
            .map(|s| s.map(|s| KeyValue::Int(s.div_euclid(86_400))))
            .collect();
        let month_keys: Vec<Option<KeyValue>> = dates
            .iter()
            .map(|d| {
                d.map(|d| {
                    let (y, m, _) = civil_from_days(d.into());
                    KeyValue::Int(y * 12 + i64::from(m) - 1)
                })
            })
            .collect();
        let all_keys = [int_keys, sym_keys, day_keys, month_keys];

        let int = |v: i64| KeyValue::Int(v);
        let sym = |s: &str| KeyValue::Str(s.to_string());
        let hash_int = PartitionLevel::Hash {
            key_type: ColumnType::Int,
            buckets: 5,
        };
        let hash_sym = PartitionLevel::Hash {
            key_type: ColumnType::Symbol,
            buckets: 3,
        };
        // Every key in range but the negative ones and those at or above 100,000.
        let range_int = PartitionLevel::Range {
            key_type: ColumnType::Int,
            bounds: vec![int(0), int(7), int(1000), int(50_000), int(100_000)],
        };
        let range_int_wide = PartitionLevel::Range {
            key_type: ColumnType::Int,
            bounds: vec![int(-100), int(0), int(100_100)],
        };
        let range_sym = PartitionLevel::Range {
            key_type: ColumnType::Symbol,
            bounds: vec![sym("S"), sym("S100"), sym("S250"), sym("T")],
        };
        let range_day = PartitionLevel::Range {
            key_type: ColumnType::Date,
            bounds: vec![int(day0), int(day0 + 10), int(day0 + 40)],
        };
        // S000..S399 over three lists, S005 in two of them; the rest of the keys misfit.
        let list_sym = PartitionLevel::List {
            key_type: ColumnType::Symbol,
            lists: vec![
                (0..200).map(|i| sym(&format!("S{i:03}"))).collect(),
                (5..6)
                    .chain(200..300)
                    .map(|i| sym(&format!("S{i:03}")))
                    .collect(),
                (300..400).map(|i| sym(&format!("S{i:03}"))).collect(),
            ],
        };
        let list_int_partial = PartitionLevel::List {
            key_type: ColumnType::Int,
            lists: vec![vec![int(1), int(2)], vec![int(3)]],
        };
        let value_day = PartitionLevel::Value {
            key_type: ColumnType::Date,
            values: (0..20).map(|i| int(day0 + i)).collect(),
        };
        let value_month = PartitionLevel::Value {
            key_type: ColumnType::Month,
            values: BTreeSet::new(),
        };
        let value_sym = PartitionLevel::Value {
            key_type: ColumnType::Symbol,
            values: [sym("S001"), sym("S002")].into_iter().collect(),
        };
        let value_int = PartitionLevel::Value {
            key_type: ColumnType::Int,
            values: BTreeSet::new(),
        };
        // (levels, the column each routes)
        let schemes: Vec<(Vec<PartitionLevel>, Vec<usize>)> = vec![
            (vec![hash_int.clone()], vec![0]),
            (vec![hash_sym.clone()], vec![1]),
            (vec![range_int.clone()], vec![0]),
            (vec![range_int_wide.clone()], vec![0]),
            (vec![range_sym.clone()], vec![1]),
            (vec![range_day.clone()], vec![2]),
            (vec![list_sym.clone()], vec![1]),
            (vec![list_int_partial], vec![0]),
            (vec![value_day.clone()], vec![2]),
            (vec![value_month.clone()], vec![3]),
            (vec![value_sym.clone()], vec![1]),
            (vec![value_int.clone()], vec![0]),
            (vec![value_day.clone(), hash_sym.clone()], vec![2, 1]),
            (vec![value_month, range_int_wide.clone()], vec![3, 0]),
            (vec![range_sym, hash_int.clone()], vec![1, 0]),
            (vec![value_sym, value_int, hash_int], vec![1, 0, 0]),
            (
                vec![range_day, list_sym.clone(), range_int_wide],
                vec![2, 1, 0],
            ),
            (vec![list_sym, range_int], vec![1, 0]),
        ];
        for (levels, columns) in &schemes {
            let keys: Vec<Vec<Option<KeyValue>>> =
                columns.iter().map(|c| all_keys[*c].clone()).collect();
            for policy in [
                NewValuePolicy::Add,
                NewValuePolicy::Skip,
                NewValuePolicy::Fail,
            ] {
                assert_routes_like_reference(levels, columns, &keys, &batch, policy);
                // The same rows in smaller batches, as a COPY sends them.
                for start in (0..rows).step_by(7_000) {
                    let len = 7_000.min(rows - start);
                    let keys: Vec<Vec<Option<KeyValue>>> = keys
                        .iter()
                        .map(|k| k[start..start + len].to_vec())
                        .collect();
                    let part = batch.slice(start, len);
                    assert_routes_like_reference(levels, columns, &keys, &part, policy);
                }
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
