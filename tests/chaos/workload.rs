//! The writers of a chaos run and the history they record, and the check of a database's
//! final content against that history.
//!
//! Every row has a unique id, and every id belongs to one writer, which alone inserts,
//! updates or deletes it; so each writer's own order of operations is the order they took
//! effect in. An operation the server acknowledged happened; one that failed (an error, a
//! lost connection, a timeout) may or may not have happened, and is all-or-nothing. A
//! writer never touches a row again once an operation on it was not acknowledged, so each
//! row ends in one known state or one of a few.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::SinkExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::common::connect;

/// The replicated databases and their tables.
pub const SETUP: &str = r#"
    create database "dfs://chaos1" partitioned by VALUE(2023.01.01..2023.01.28);
    select setDatabaseForClusterReplication('dfs://chaos1', true);
    create table "dfs://chaos1"."events"(day DATE, id LONG, w INT, v LONG) partitioned by day;
    create database "dfs://chaos2" partitioned by VALUE(2023.01.01..2023.01.28);
    select setDatabaseForClusterReplication('dfs://chaos2', true);"#;

/// How long one statement may take before the writer gives up on it (and its connection).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);

/// What a writer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriterKind {
    /// Small multi-row INSERTs.
    Insert,
    /// COPY FROM STDIN of a few hundred to a few thousand rows.
    Copy,
    /// INSERTs, then UPDATEs and DELETEs of its own rows.
    Mutate,
    /// CREATE TABLE, an INSERT into it, and DROP TABLE in `dfs://chaos2`.
    Ddl,
}

/// One row of `events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub id: i64,
    /// Day of January 2023.
    pub day: u32,
    pub w: i32,
    pub v: i64,
}

/// An operation a writer sent.
#[derive(Clone, Debug)]
pub enum Op {
    Insert(Vec<Row>),
    Copy(Vec<Row>),
    Update {
        ids: Vec<i64>,
        v: i64,
    },
    Delete(Vec<i64>),
    CreateTable(u32),
    /// One row, `(day 1, id = n)`, into `t<n>`.
    InsertInto(u32),
    DropTable(u32),
}

/// An operation and whether the server acknowledged it.
#[derive(Clone, Debug)]
pub struct Txn {
    pub op: Op,
    pub acked: bool,
}

/// Every operation of every writer, in the order each writer sent them.
pub type History = Arc<Mutex<Vec<Txn>>>;

/// Runs one writer until `stop`, sending its operations to the data nodes of `urls` in turn
/// (a new connection after every failure).
pub async fn writer(
    w: usize,
    kind: WriterKind,
    urls: Vec<String>,
    seed: u64,
    stop: Arc<AtomicBool>,
    history: History,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ (w as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut state = WriterState::new(w);
    let mut client: Option<tokio_postgres::Client> = None;
    let mut next_url = w;
    while !stop.load(Ordering::Relaxed) {
        let c = match client.take() {
            Some(c) => c,
            None => {
                next_url += 1;
                match tokio::time::timeout(STATEMENT_TIMEOUT, connect(&urls[next_url % urls.len()]))
                    .await
                {
                    Ok(Ok(c)) => c,
                    _ => {
                        // The node is down or paused: try the next one a moment later.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
        };
        let op = state.next(kind, &mut rng);
        let acked = matches!(
            tokio::time::timeout(STATEMENT_TIMEOUT, run(&c, &op)).await,
            Ok(Ok(()))
        );
        state.record(&op, acked);
        history.lock().unwrap().push(Txn { op, acked });
        if acked {
            client = Some(c);
        } else {
            // Back off a little so a node that is down is not hammered.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Sends one operation.
async fn run(c: &tokio_postgres::Client, op: &Op) -> Result<(), tokio_postgres::Error> {
    match op {
        Op::Insert(rows) => {
            let values: Vec<String> = rows
                .iter()
                .map(|r| format!("(date '2023-01-{:02}', {}, {}, {})", r.day, r.id, r.w, r.v))
                .collect();
            c.batch_execute(&format!(
                r#"insert into "dfs://chaos1"."events" values {}"#,
                values.join(",")
            ))
            .await
        }
        Op::Copy(rows) => {
            let data: String = rows
                .iter()
                .map(|r| format!("2023-01-{:02}\t{}\t{}\t{}\n", r.day, r.id, r.w, r.v))
                .collect();
            let sink = c
                .copy_in(r#"copy "dfs://chaos1"."events" from stdin"#)
                .await?;
            futures::pin_mut!(sink);
            sink.send(bytes::Bytes::from(data)).await?;
            sink.finish().await.map(|_| ())
        }
        Op::Update { ids, v } => {
            c.batch_execute(&format!(
                r#"update "dfs://chaos1"."events" set v = {v} where id in ({})"#,
                list(ids)
            ))
            .await
        }
        Op::Delete(ids) => {
            c.batch_execute(&format!(
                r#"delete from "dfs://chaos1"."events" where id in ({})"#,
                list(ids)
            ))
            .await
        }
        Op::CreateTable(n) => {
            c.batch_execute(&format!(
                r#"create table "dfs://chaos2"."t{n}"(day DATE, id LONG) partitioned by day"#
            ))
            .await
        }
        Op::InsertInto(n) => {
            c.batch_execute(&format!(
                r#"insert into "dfs://chaos2"."t{n}" values (date '2023-01-01', {n})"#
            ))
            .await
        }
        Op::DropTable(n) => {
            c.batch_execute(&format!(r#"drop table "dfs://chaos2"."t{n}""#))
                .await
        }
    }
}

fn list(ids: &[i64]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// What a writer knows about its own rows and tables, to choose its next operation.
struct WriterState {
    w: usize,
    next_id: i64,
    /// Rows whose every operation was acknowledged, with their value.
    certain: BTreeMap<i64, i64>,
    next_v: i64,
    /// `dfs://chaos2` tables created (acknowledged) and not dropped; whether they have their
    /// row.
    tables: BTreeMap<u32, bool>,
    next_table: u32,
}

impl WriterState {
    fn new(w: usize) -> Self {
        WriterState {
            w,
            next_id: w as i64 * 1_000_000_000,
            certain: BTreeMap::new(),
            next_v: 1,
            tables: BTreeMap::new(),
            next_table: w as u32 * 100_000,
        }
    }

    fn rows(&mut self, n: usize, rng: &mut StdRng) -> Vec<Row> {
        (0..n)
            .map(|_| {
                self.next_id += 1;
                Row {
                    id: self.next_id,
                    day: rng.random_range(1..=28),
                    w: self.w as i32,
                    v: 0,
                }
            })
            .collect()
    }

    fn next(&mut self, kind: WriterKind, rng: &mut StdRng) -> Op {
        match kind {
            WriterKind::Insert => Op::Insert(self.rows(rng.random_range(1..=20), rng)),
            WriterKind::Copy => Op::Copy(self.rows(rng.random_range(200..=3000), rng)),
            WriterKind::Mutate => {
                let pick = rng.random_range(0..10);
                if self.certain.len() < 20 || pick < 4 {
                    return Op::Insert(self.rows(rng.random_range(5..=30), rng));
                }
                let n = rng.random_range(1..=5);
                let keys: Vec<i64> = self.certain.keys().copied().collect();
                let ids: BTreeSet<i64> = (0..n)
                    .map(|_| keys[rng.random_range(0..keys.len())])
                    .collect();
                let ids: Vec<i64> = ids.into_iter().collect();
                if pick < 8 {
                    self.next_v += 1;
                    Op::Update {
                        ids,
                        v: self.next_v,
                    }
                } else {
                    Op::Delete(ids)
                }
            }
            WriterKind::Ddl => {
                if let Some((&n, _)) = self.tables.iter().find(|(_, filled)| !**filled) {
                    return Op::InsertInto(n);
                }
                if self.tables.len() > 3 && rng.random_bool(0.3) {
                    let n = *self.tables.keys().next().expect("a table");
                    return Op::DropTable(n);
                }
                self.next_table += 1;
                Op::CreateTable(self.next_table)
            }
        }
    }

    fn record(&mut self, op: &Op, acked: bool) {
        match op {
            Op::Insert(rows) | Op::Copy(rows) => {
                if acked {
                    self.certain.extend(rows.iter().map(|r| (r.id, r.v)));
                }
            }
            Op::Update { ids, v } => {
                for id in ids {
                    if acked {
                        self.certain.insert(*id, *v);
                    } else {
                        self.certain.remove(id);
                    }
                }
            }
            Op::Delete(ids) => {
                for id in ids {
                    self.certain.remove(id);
                }
            }
            Op::CreateTable(n) => {
                if acked {
                    self.tables.insert(*n, false);
                }
            }
            Op::InsertInto(n) => {
                // Not acknowledged: the row may be there or not; the table takes no more.
                self.tables.insert(*n, true);
            }
            Op::DropTable(n) => {
                self.tables.remove(n);
            }
        }
    }
}

/// What a row may look like at the end.
#[derive(Clone, Debug, Default)]
struct Expect {
    day: u32,
    w: i32,
    /// Whether it must be there (`Some(true)`), must not be (`Some(false)`), or may be.
    present: Option<bool>,
    /// The values it may have.
    values: BTreeSet<i64>,
    /// The failed insert it came with (its rows are all there or none is).
    group: Option<usize>,
}

/// What the check of one database found.
#[derive(Debug, Default)]
pub struct Verdict {
    pub rows: usize,
    pub acked_rows: usize,
    pub lost: Vec<i64>,
    pub duplicated: Vec<i64>,
    pub wrong_value: Vec<(i64, i64)>,
    pub resurrected: Vec<i64>,
    pub phantom: Vec<i64>,
    /// Failed inserts only part of which is there.
    pub torn: Vec<usize>,
    /// Tables of `dfs://chaos2` that are wrong: (table, why).
    pub tables: Vec<(u32, String)>,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.wrong_value.is_empty()
            && self.resurrected.is_empty()
            && self.phantom.is_empty()
            && self.torn.is_empty()
            && self.tables.is_empty()
    }
}

/// Checks `events` rows (as read back) and the `dfs://chaos2` tables (name → its ids, for the
/// ones that exist) against the history.
pub fn check(history: &[Txn], events: &[Row], tables: &BTreeMap<u32, Vec<i64>>) -> Verdict {
    let mut expect: HashMap<i64, Expect> = HashMap::new();
    let mut groups: Vec<Vec<i64>> = Vec::new();
    let mut table_expect: BTreeMap<u32, (Option<bool>, Option<bool>)> = BTreeMap::new();
    let mut verdict = Verdict::default();
    for t in history {
        match &t.op {
            Op::Insert(rows) | Op::Copy(rows) => {
                let group = (!t.acked).then(|| {
                    groups.push(rows.iter().map(|r| r.id).collect());
                    groups.len() - 1
                });
                for r in rows {
                    expect.insert(
                        r.id,
                        Expect {
                            day: r.day,
                            w: r.w,
                            present: t.acked.then_some(true),
                            values: BTreeSet::from([r.v]),
                            group,
                        },
                    );
                }
            }
            Op::Update { ids, v } => {
                for id in ids {
                    let e = expect.get_mut(id).expect("updates touch known rows");
                    if t.acked {
                        e.values = BTreeSet::from([*v]);
                    } else {
                        e.values.insert(*v);
                    }
                }
            }
            Op::Delete(ids) => {
                for id in ids {
                    let e = expect.get_mut(id).expect("deletes touch known rows");
                    e.present = if t.acked { Some(false) } else { None };
                }
            }
            // Per table: (exists, has its row); `None` = may or may not.
            Op::CreateTable(n) => {
                table_expect.insert(*n, (t.acked.then_some(true), Some(false)));
            }
            Op::InsertInto(n) => {
                if let Some(e) = table_expect.get_mut(n) {
                    e.1 = if t.acked { Some(true) } else { None };
                }
            }
            Op::DropTable(n) => {
                if let Some(e) = table_expect.get_mut(n) {
                    e.0 = if t.acked { Some(false) } else { None };
                }
            }
        }
    }
    verdict.acked_rows = expect.values().filter(|e| e.present == Some(true)).count();
    verdict.rows = events.len();
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for r in events {
        *seen.entry(r.id).or_default() += 1;
    }
    for r in events {
        match expect.get(&r.id) {
            None => verdict.phantom.push(r.id),
            Some(e) => {
                if e.present == Some(false) {
                    verdict.resurrected.push(r.id);
                } else if !e.values.contains(&r.v) || e.day != r.day || e.w != r.w {
                    verdict.wrong_value.push((r.id, r.v));
                }
            }
        }
    }
    verdict.duplicated = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    verdict.lost = expect
        .iter()
        .filter(|(id, e)| e.present == Some(true) && !seen.contains_key(id))
        .map(|(id, _)| *id)
        .collect();
    verdict.lost.sort_unstable();
    verdict.duplicated.sort_unstable();
    for (g, ids) in groups.iter().enumerate() {
        // Rows of a failed insert that were later deleted (acknowledged) do not count.
        let candidates: Vec<&i64> = ids
            .iter()
            .filter(|id| expect[*id].present.is_none() && expect[*id].group == Some(g))
            .collect();
        let there = candidates.iter().filter(|id| seen.contains_key(id)).count();
        if there != 0 && there != candidates.len() {
            verdict.torn.push(g);
        }
    }
    for (n, ids) in tables {
        match table_expect.get(n) {
            None => verdict.tables.push((*n, "never created".into())),
            Some((Some(false), _)) => verdict.tables.push((*n, "dropped".into())),
            Some((_, filled)) => {
                let ok = match filled {
                    Some(true) => ids == &[*n as i64],
                    Some(false) => ids.is_empty(),
                    None => ids.is_empty() || ids == &[*n as i64],
                };
                if !ok {
                    verdict.tables.push((*n, format!("holds ids {ids:?}")));
                }
            }
        }
    }
    for (n, (exists, _)) in &table_expect {
        if *exists == Some(true) && !tables.contains_key(n) {
            verdict.tables.push((*n, "missing".into()));
        }
    }
    verdict
}

/// Every table name the history mentions.
pub fn table_names(history: &[Txn]) -> BTreeSet<u32> {
    history
        .iter()
        .filter_map(|t| match t.op {
            Op::CreateTable(n) => Some(n),
            _ => None,
        })
        .collect()
}

/// Reads every row of `events`, sorted by id.
pub async fn read_events(c: &tokio_postgres::Client) -> Result<Vec<Row>, tokio_postgres::Error> {
    let rows = c
        .query(
            r#"select id, cast(day as varchar), w, v from "dfs://chaos1"."events""#,
            &[],
        )
        .await?;
    let mut out: Vec<Row> = rows
        .iter()
        .map(|r| {
            let day: String = r.get(1);
            Row {
                id: r.get(0),
                day: day[8..10].parse().expect("a January 2023 day"),
                w: r.get(2),
                v: r.get(3),
            }
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Reads the ids of each table of `names` that exists in `dfs://chaos2`.
pub async fn read_tables(
    c: &tokio_postgres::Client,
    names: &BTreeSet<u32>,
) -> Result<BTreeMap<u32, Vec<i64>>, tokio_postgres::Error> {
    let mut out = BTreeMap::new();
    for n in names {
        match c
            .query(&format!(r#"select id from "dfs://chaos2"."t{n}""#), &[])
            .await
        {
            Ok(rows) => {
                let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
                ids.sort_unstable();
                out.insert(*n, ids);
            }
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, v: i64) -> Row {
        Row {
            id,
            day: 1,
            w: 0,
            v,
        }
    }

    fn txn(op: Op, acked: bool) -> Txn {
        Txn { op, acked }
    }

    /// The check itself must be able to fail: each kind of damage is reported.
    #[test]
    fn the_check_reports_each_kind_of_damage() {
        let history = vec![
            txn(Op::Insert(vec![row(1, 0), row(2, 0), row(3, 0)]), true),
            txn(Op::Copy(vec![row(4, 0), row(5, 0)]), false),
            txn(Op::Update { ids: vec![1], v: 7 }, true),
            txn(Op::Delete(vec![2]), true),
            txn(Op::CreateTable(9), true),
            txn(Op::InsertInto(9), true),
        ];
        let good = vec![row(1, 7), row(3, 0), row(4, 0), row(5, 0)];
        let tables = BTreeMap::from([(9, vec![9])]);
        let v = check(&history, &good, &tables);
        assert!(v.is_clean(), "{v:?}");
        assert_eq!(v.acked_rows, 2);
        let v = check(&history, &[row(1, 7), row(4, 0), row(5, 0)], &tables);
        assert_eq!(v.lost, vec![3]);
        let v = check(&history, &[row(1, 7), row(3, 0), row(3, 0)], &tables);
        assert_eq!(v.duplicated, vec![3]);
        let v = check(&history, &[row(1, 0), row(3, 0)], &tables);
        assert_eq!(v.wrong_value, vec![(1, 0)]);
        let v = check(&history, &[row(1, 7), row(2, 0), row(3, 0)], &tables);
        assert_eq!(v.resurrected, vec![2]);
        let v = check(&history, &[row(1, 7), row(3, 0), row(4, 0)], &tables);
        assert_eq!(v.torn, vec![0]);
        let v = check(&history, &[row(1, 7), row(3, 0), row(6, 0)], &tables);
        assert_eq!(v.phantom, vec![6]);
        let v = check(&history, &good, &BTreeMap::new());
        assert_eq!(v.tables, vec![(9, "missing".to_string())]);
        let v = check(&history, &good, &BTreeMap::from([(9, vec![])]));
        assert_eq!(v.tables.len(), 1);
    }
}
