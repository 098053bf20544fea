//! The COPY parser alone: testTB's 1,210,000 CSV rows parsed into Arrow batches in-process,
//! fed the way psql sends them (one `CopyData` message per line) and the way drivers do
//! (64 KiB messages). No server, no network, no storage: what is left is the parser's own cost
//! per row, so a change to it shows here before it is lost in the noise of a whole COPY.
//!
//! Run: `cargo bench --bench copy_parser`. Prints the median of seven runs for each way of
//! feeding, in ms and ns per row; figures are kept in `benches/README.md`.

use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use porpoise::query::parse::copy_format::{CopyOptions, CopyParser};

#[path = "common/mod.rs"]
mod common;

/// testTB's columns as the COPY path sees them (SYMBOL is UTF-8, DATETIME seconds).
fn schema() -> Arc<Schema> {
    let mut fields = vec![
        Field::new("SecurityID", DataType::Utf8, true),
        Field::new(
            "DateTime",
            DataType::Timestamp(TimeUnit::Second, None),
            true,
        ),
    ];
    for name in ["PreClosePx", "OpenPx", "HighPx", "LowPx", "LastPx"] {
        fields.push(Field::new(name, DataType::Float64, true));
    }
    fields.push(Field::new("Volume", DataType::Int32, true));
    fields.push(Field::new("Amount", DataType::Float64, true));
    Arc::new(Schema::new(fields))
}

/// Parses every message in turn; returns the rows parsed.
fn parse<'a>(messages: impl Iterator<Item = &'a [u8]>) -> usize {
    let mut parser = CopyParser::new("testTB", schema(), CopyOptions::csv(), 64 * 1024);
    let mut rows = 0;
    for message in messages {
        for batch in parser.push(message).expect("parse") {
            rows += batch.num_rows();
        }
    }
    if let Some(batch) = parser.finish().expect("finish") {
        rows += batch.num_rows();
    }
    rows
}

fn main() {
    let csv = common::testtb_csv();
    let expected = common::SECURITIES * common::minutes().len();
    // The messages are cut before the clock starts, as they arrive from the wire.
    let feeds: [(&str, Vec<&[u8]>); 2] = [
        (
            "one message per line (psql)",
            csv.split_inclusive(|&b| b == b'\n').collect(),
        ),
        ("64 KiB messages (drivers)", csv.chunks(64 * 1024).collect()),
    ];
    for (name, messages) in &feeds {
        let mut times: Vec<f64> = (0..7)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(parse(messages.iter().copied()), expected);
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "copy parser, {name}: {expected} rows in {:.1} ms ({:.0} ns per row)",
            median * 1e3,
            median * 1e9 / expected as f64
        );
    }
}
