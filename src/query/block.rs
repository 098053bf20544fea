//! The writes of a session's explicit transaction block (`BEGIN ... COMMIT`).
//!
//! Outside a block every statement is its own [`WriteTxn`]. Inside one, INSERT, COPY FROM,
//! UPDATE and DELETE stage their rows in a transaction the session holds, one per table, and
//! nothing of it is visible until COMMIT commits it (one raft entry, as any write). ROLLBACK,
//! COMMIT of a failed block, a statement that failed while writing, and a client that goes
//! away drop the transaction, which aborts it: its staged files are removed on every
//! participant and nothing was ever prepared.
//!
//! Limits of this version, refused with 0A000 (the block fails, nothing is committed):
//! - a block writes one table: committing two tables' transactions atomically needs one commit
//!   entry for both;
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
    Block(Option<WriteTxn>),
}

/// How a statement writes its table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WriteKind {
    /// INSERT or COPY FROM: appends rows.
    Append,
    /// UPDATE or DELETE: rewrites committed rows.
    Rewrite,
}

#[derive(Default)]
struct State {
    open: bool,
    /// The table the block writes, and its transaction (absent while a statement uses it).
    table: Option<(String, String)>,
    txn: Option<WriteTxn>,
    /// The table's transaction holds a rewrite (UPDATE or DELETE).
    rewritten: bool,
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

    /// Ends the block and hands over its transaction, to be committed or dropped (aborted).
    pub fn close(&self) -> Option<WriteTxn> {
        let mut s = self.lock();
        std::mem::take(&mut *s).txn
    }

    /// What a statement writing `db`.`table` the `kind` way appends to; refuses what this
    /// version cannot stage (see the module documentation).
    pub fn take(&self, db: &str, table: &str, kind: WriteKind) -> Result<Held, QueryError> {
        let mut s = self.lock();
        if !s.open {
            return Ok(Held::Own);
        }
        let target = (db.to_string(), table.to_string());
        match &s.table {
            Some(t) if *t != target => {
                return Err(QueryError::other(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    format!(
                        "a transaction block writes one table in this version: this block \
                         wrote \"{}\".\"{}\", so it cannot also write \"{db}\".\"{table}\" \
                         (commit the block first)",
                        t.0, t.1
                    ),
                ))
            }
            Some(_) if kind == WriteKind::Rewrite || s.rewritten => {
                return Err(QueryError::other(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    format!(
                        "an UPDATE or DELETE must be the only write of its table in a \
                         transaction block in this version: \"{db}\".\"{table}\" was written \
                         already in this block (commit the block first)"
                    ),
                ))
            }
            _ => {}
        }
        s.table = Some(target);
        s.rewritten = kind == WriteKind::Rewrite;
        s.writes += 1;
        Ok(Held::Block(s.txn.take()))
    }

    /// Gives back the block's transaction after a statement that wrote to it succeeded. A
    /// statement that failed drops it instead (the block has failed: nothing commits).
    pub fn put(&self, txn: WriteTxn) {
        let mut s = self.lock();
        if s.open {
            s.txn = Some(txn);
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
    held: Option<WriteTxn>,
    db: &str,
    table: &str,
) -> Result<WriteTxn, crate::datanode::DataNodeError> {
    match held {
        Some(txn) => Ok(txn),
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
