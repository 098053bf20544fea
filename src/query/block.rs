//! The writes of a session's explicit transaction block (`BEGIN ... COMMIT`).
//!
//! Outside a block every statement is its own [`WriteTxn`]. Inside one, INSERT, COPY FROM,
//! UPDATE and DELETE stage their rows in transactions the session holds, one per table, and
//! nothing of them is visible until COMMIT commits them all in one raft entry
//! ([`WriteTxn::commit_all`]: every table's rows or none). ROLLBACK, COMMIT of a failed
//! block, a statement that failed while writing, and a client that goes away drop the
//! transactions, which aborts them: their staged files are removed on every participant and
//! nothing was ever prepared.
//!
//! Limits of this version, refused with 0A000 (the block fails, nothing is committed):
//! - an UPDATE or DELETE must be the only write of its table in the block: it rewrites the
//!   table's committed rows, so it would not see rows the block staged before it, and a
//!   replication task carries either appended rows or one rewrite;
//! - `ROLLBACK TO SAVEPOINT` when the block wrote since the savepoint (staged rows cannot be
//!   taken back one statement at a time).
//!
//! Reads inside a block see the committed state at each statement, not the block's own
//! writes.
//!
//! The holder is a DataFusion session-config extension of the session's context, so the table
//! provider executing an INSERT, UPDATE or DELETE finds it ([`BlockWrites::of`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::execution::config::SessionConfig;

use super::QueryError;
use crate::datanode::{DataNode, WriteTxn};
use crate::sqlstate::SqlState;

/// What a write statement appends to, inside or outside a block.
pub enum Held {
    /// No block: the statement begins and commits its own transaction.
    Own,
    /// The block's transaction of the table (`None`: the block has not written it yet); give
    /// it back with [`BlockWrites::put`] once the statement succeeded.
    Block(Option<Box<WriteTxn>>),
}

/// How a statement writes its table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WriteKind {
    /// INSERT or COPY FROM: appends rows.
    Append,
    /// UPDATE or DELETE: rewrites committed rows.
    Rewrite,
}

/// A table, as `(database, table)`.
type TableKey = (String, String);

#[derive(Default)]
struct State {
    open: bool,
    /// The tables the block writes, each with whether its transaction holds a rewrite
    /// (UPDATE or DELETE).
    tables: BTreeMap<TableKey, bool>,
    /// Their transactions (one is absent while a statement uses it).
    txns: BTreeMap<TableKey, WriteTxn>,
    /// Write statements begun in the block.
    writes: u64,
    /// Savepoints, with the number of writes when each was set.
    savepoints: Vec<(String, u64)>,
}

/// The writes of one session's transaction block.
#[derive(Default)]
pub struct BlockWrites {
    state: Mutex<State>,
}

impl BlockWrites {
    /// The holder of the session whose context has `config`, if any (internal sessions, such
    /// as a replication task's, have none and always write on their own).
    pub fn of(config: &SessionConfig) -> Option<Arc<BlockWrites>> {
        config.get_extension::<BlockWrites>()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the block (BEGIN).
    pub fn open(&self) {
        let mut s = self.lock();
        *s = State {
            open: true,
            ..State::default()
        };
    }

    /// Whether a block is open.
    pub fn is_open(&self) -> bool {
        self.lock().open
    }

    /// Ends the block and hands over its transactions, to be committed or dropped (aborted).
    pub fn close(&self) -> Vec<WriteTxn> {
        let mut s = self.lock();
        std::mem::take(&mut *s).txns.into_values().collect()
    }

    /// What a statement writing `db`.`table` the `kind` way appends to; refuses what this
    /// version cannot stage (see the module documentation).
    pub fn take(&self, db: &str, table: &str, kind: WriteKind) -> Result<Held, QueryError> {
        let mut s = self.lock();
        if !s.open {
            return Ok(Held::Own);
        }
        let target = (db.to_string(), table.to_string());
        if let Some(rewritten) = s.tables.get(&target) {
            if kind == WriteKind::Rewrite || *rewritten {
                return Err(QueryError::other(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    format!(
                        "an UPDATE or DELETE must be the only write of its table in a \
                         transaction block in this version: \"{db}\".\"{table}\" was written \
                         already in this block (commit the block first)"
                    ),
                ));
            }
        }
        s.tables.insert(target.clone(), kind == WriteKind::Rewrite);
        s.writes += 1;
        Ok(Held::Block(s.txns.remove(&target).map(Box::new)))
    }

    /// Gives back the block's transaction after a statement that wrote to it succeeded. A
    /// statement that failed drops it instead (the block has failed: nothing commits).
    pub fn put(&self, txn: WriteTxn) {
        let mut s = self.lock();
        if s.open {
            let key = (txn.database().name.clone(), txn.table().name.clone());
            s.txns.insert(key, txn);
        }
    }

    /// `SAVEPOINT name`.
    pub fn savepoint(&self, name: &str) {
        let mut s = self.lock();
        let writes = s.writes;
        s.savepoints.push((name.to_string(), writes));
    }

    /// `ROLLBACK TO SAVEPOINT name`: accepted when the block has not written since the
    /// savepoint (there is nothing to take back).
    pub fn rollback_to(&self, name: &str) -> Result<(), QueryError> {
        let s = self.lock();
        let at = s
            .savepoints
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(0, |(_, w)| *w);
        if s.writes != at {
            return Err(QueryError::other(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!(
                    "ROLLBACK TO SAVEPOINT {name} after writes in the transaction block is not \
                     supported in this version: roll back the whole block"
                ),
            ));
        }
        Ok(())
    }
}

/// Begins the transaction `held` does not have yet.
pub async fn txn_for(
    node: &Arc<DataNode>,
    held: Option<Box<WriteTxn>>,
    db: &str,
    table: &str,
) -> Result<WriteTxn, crate::datanode::DataNodeError> {
    match held {
        Some(txn) => Ok(*txn),
        None => node.begin(db, table).await,
    }
}

/// The error of a write to a table that was altered, truncated or recreated since the block
/// began writing it.
pub fn changed_in_block(db: &str, table: &str) -> QueryError {
    QueryError::other(
        SqlState::FEATURE_NOT_SUPPORTED,
        format!(
            "\"{db}\".\"{table}\" changed (DDL) after this transaction block wrote it: roll \
             the block back"
        ),
    )
}
