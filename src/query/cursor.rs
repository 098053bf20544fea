//! SQL-level cursors of a session (`DECLARE`, `FETCH`, `MOVE`, `CLOSE`), as PostgreSQL has
//! them for drivers' server-side cursors.
//!
//! A cursor holds the running query's batch stream (planned, authorized and started when it
//! is declared) and the rows of a batch a FETCH left over; a FETCH reads only as many batches
//! as the rows it asks for, so a cursor over a huge result never holds more than a batch.
//! Cursors only move forward.
//!
//! Lifetime, as in PostgreSQL: a cursor without HOLD needs a transaction block and ends with
//! it; one WITH HOLD may be declared outside a block and lives until CLOSE or the end of the
//! session, except that a ROLLBACK closes the held cursors declared in the rolled-back block.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use sqlparser::ast::Statement;
use tokio::sync::Mutex;

use super::parse::cursor::Count;
use super::QueryError;
use crate::sqlstate::SqlState;

/// One open cursor.
struct Cursor {
    stream: SendableRecordBatchStream,
    /// Rows of the last batch read that no FETCH took yet.
    leftover: Option<RecordBatch>,
    finished: bool,
}

/// What is known of a cursor without reading it.
#[derive(Clone)]
pub struct CursorInfo {
    pub schema: SchemaRef,
    /// The query, for the names of its result columns.
    pub query: Statement,
    pub binary: bool,
    hold: bool,
    /// Declared in the transaction block now open.
    in_block: bool,
}

impl CursorInfo {
    /// A cursor over `query`'s rows of `schema`; `in_block`: declared in an open block.
    pub fn new(
        query: Statement,
        schema: SchemaRef,
        binary: bool,
        hold: bool,
        in_block: bool,
    ) -> Self {
        CursorInfo {
            schema,
            query,
            binary,
            hold,
            in_block,
        }
    }
}

/// The open cursors by name.
type Open = HashMap<String, (CursorInfo, Arc<Mutex<Cursor>>)>;

/// The cursors of one session.
#[derive(Default)]
pub struct Cursors {
    open: std::sync::Mutex<Open>,
}

fn not_found(name: &str) -> QueryError {
    QueryError::other(
        SqlState::INVALID_CURSOR_NAME,
        format!("cursor \"{name}\" does not exist"),
    )
}

impl Cursors {
    fn map(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens cursor `name` over a started query.
    pub fn declare(
        &self,
        name: &str,
        info: CursorInfo,
        stream: SendableRecordBatchStream,
    ) -> Result<(), QueryError> {
        let mut map = self.map();
        if map.contains_key(name) {
            return Err(QueryError::other(
                SqlState::DUPLICATE_CURSOR,
                format!("cursor \"{name}\" already exists"),
            ));
        }
        let cursor = Cursor {
            stream,
            leftover: None,
            finished: false,
        };
        map.insert(name.to_owned(), (info, Arc::new(Mutex::new(cursor))));
        Ok(())
    }

    /// What cursor `name` returns.
    pub fn info(&self, name: &str) -> Option<CursorInfo> {
        self.map().get(name).map(|(info, _)| info.clone())
    }

    /// The next `count` rows of cursor `name`, read as they are sent.
    pub fn fetch(
        &self,
        name: &str,
        count: Count,
    ) -> Result<(SchemaRef, SendableRecordBatchStream), QueryError> {
        let (info, cursor) = self
            .map()
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))?;
        let wanted = match count {
            Count::All => u64::MAX,
            Count::Rows(n) => n,
        };
        let batches = futures::stream::unfold((cursor, wanted), |(cursor, left)| async move {
            if left == 0 {
                return None;
            }
            let next = cursor.lock().await.take(left).await;
            match next {
                Ok(Some(batch)) => {
                    let left = left - batch.num_rows() as u64;
                    Some((Ok(batch), (cursor, left)))
                }
                Ok(None) => None,
                Err(e) => Some((Err(e), (cursor, 0))),
            }
        });
        let stream = RecordBatchStreamAdapter::new(info.schema.clone(), batches);
        Ok((info.schema, Box::pin(stream)))
    }

    /// Skips the next `count` rows of cursor `name`; returns how many there were.
    pub async fn skip(&self, name: &str, count: Count) -> Result<u64, QueryError> {
        let (_, mut rows) = self.fetch(name, count)?;
        let mut n = 0;
        while let Some(batch) = rows.next().await {
            n += batch?.num_rows() as u64;
        }
        Ok(n)
    }

    /// The names of the open cursors.
    pub fn names(&self) -> Vec<String> {
        self.map().keys().cloned().collect()
    }

    /// Closes cursor `name`, or every cursor.
    pub fn close(&self, name: Option<&str>) -> Result<(), QueryError> {
        let mut map = self.map();
        match name {
            None => map.clear(),
            Some(name) => {
                map.remove(name).ok_or_else(|| not_found(name))?;
            }
        }
        Ok(())
    }

    /// The block ended: cursors without HOLD close, and on a rollback also those declared in
    /// the block. Returns the names closed.
    pub fn end_block(&self, committed: bool) -> Vec<String> {
        let mut map = self.map();
        let closed: Vec<String> = map
            .iter()
            .filter(|(_, (info, _))| !info.hold || (!committed && info.in_block))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &closed {
            map.remove(name);
        }
        for (info, _) in map.values_mut() {
            info.in_block = false;
        }
        closed
    }
}

impl Cursor {
    /// Up to `left` rows: the leftover of the last batch, or of the next one.
    async fn take(
        &mut self,
        left: u64,
    ) -> Result<Option<RecordBatch>, datafusion::error::DataFusionError> {
        let batch = match self.leftover.take() {
            Some(b) => b,
            None => loop {
                if self.finished {
                    return Ok(None);
                }
                match self.stream.next().await {
                    Some(Ok(b)) if b.num_rows() == 0 => continue,
                    Some(Ok(b)) => break b,
                    Some(Err(e)) => {
                        self.finished = true;
                        return Err(e);
                    }
                    None => {
                        self.finished = true;
                        return Ok(None);
                    }
                }
            },
        };
        let rows = batch.num_rows() as u64;
        if rows <= left {
            return Ok(Some(batch));
        }
        let n = left as usize;
        self.leftover = Some(batch.slice(n, batch.num_rows() - n));
        Ok(Some(batch.slice(0, n)))
    }
}
