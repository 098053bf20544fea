//! Row routing alone: 150,000 rows (the size of a small TPC-H table) split by every kind of
//! partition scheme, in-process, with no server, parsing or storage. The keys are unique, of
//! one value, or of a thousand values, so a cost that follows the number of distinct keys
//! rather than the rows shows here: each line should take about as long as the others of its
//! scheme, and the whole load about as long as the same rows into a dimension table.
//!
//! Run: `cargo bench --bench routing`. Prints the median of seven runs for each scheme and key
//! set, in ms and ns per row; figures are kept in `benches/README.md`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use porpoise::catalog::scheme::{route, NewValuePolicy};
use porpoise::catalog::{ColumnType, KeyValue, PartitionLevel};

const ROWS: usize = 150_000;

/// `k` INT, `name` STRING, `v` DOUBLE; `k` and `name` take `distinct` values.
fn batch(distinct: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int32, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("v", DataType::Float64, true),
    ]));
    let keys: Vec<i32> = (0..ROWS).map(|i| (i % distinct) as i32).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int32Array::from(keys.clone())),
            Arc::new(StringArray::from_iter_values(
                keys.iter().map(|k| format!("name{k:06}")),
            )),
            Arc::new(Float64Array::from_iter_values(
                (0..ROWS).map(|i| i as f64 * 0.5),
            )),
        ],
    )
    .expect("batch")
}

fn main() {
    let int = |v: i64| KeyValue::Int(v);
    let schemes: Vec<(&str, PartitionLevel, usize)> = vec![
        (
            "HASH([INT, 4]) on k",
            PartitionLevel::Hash {
                key_type: ColumnType::Int,
                buckets: 4,
            },
            0,
        ),
        (
            "HASH([STRING, 4]) on name",
            PartitionLevel::Hash {
                key_type: ColumnType::String,
                buckets: 4,
            },
            1,
        ),
        (
            "RANGE(0 50000 100000 150000) on k",
            PartitionLevel::Range {
                key_type: ColumnType::Int,
                bounds: vec![int(0), int(50_000), int(100_000), int(150_000)],
            },
            0,
        ),
        (
            "LIST (8 lists) on k",
            PartitionLevel::List {
                key_type: ColumnType::Int,
                lists: (0..8)
                    .map(|l| (0..ROWS as i64).filter(|k| k % 8 == l).map(int).collect())
                    .collect(),
            },
            0,
        ),
        (
            "VALUE on k (domain grows)",
            PartitionLevel::Value {
                key_type: ColumnType::Int,
                values: BTreeSet::new(),
            },
            0,
        ),
    ];
    for distinct in [1, 1000, ROWS] {
        let batch = batch(distinct);
        for (name, level, column) in &schemes {
            let mut times: Vec<f64> = (0..7)
                .map(|_| {
                    let t = Instant::now();
                    let routing = route(
                        std::slice::from_ref(level),
                        &[*column],
                        &["key".to_string()],
                        &batch,
                        NewValuePolicy::Add,
                    )
                    .expect("route");
                    let rows: usize = routing.parts.iter().map(|p| p.batch.num_rows()).sum();
                    assert_eq!(rows, ROWS);
                    t.elapsed().as_secs_f64()
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            println!(
                "routing, {name}, {distinct} distinct keys: {ROWS} rows in {:.1} ms ({:.0} ns per row)",
                median * 1e3,
                median * 1e9 / ROWS as f64
            );
        }
    }
}
