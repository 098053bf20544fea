//! The parsing layer of the query engine: statement text and COPY data in, syntax trees and
//! values out.
//!
//! Everything here is pure: no module reads the catalog, the controller or the network, so
//! each can be tested (and fuzzed) on text alone. Planning and execution live beside this
//! folder in [`crate::query`] and call in through these entry points:
//!
//! - [`split::statements`] cuts a query string into statements.
//! - [`ddl::parse_ddl`] parses porpoise's DolphinDB-flavoured DDL into a [`ddl::DdlStatement`].
//! - [`users::parse`] parses `CREATE USER`, `GRANT` and the other user statements.
//! - [`cursor::parse`] parses `DECLARE`, `FETCH`, `MOVE` and `CLOSE`.
//! - [`lexer`] is the one lexer of the DDL and user statements, whose quoting and comment
//!   rules the splitter follows too.
//! - [`literal`] reads and prints DolphinDB literal values for the DDL parser.
//! - [`temporal`] reads dates, times of day and timestamps for both of those.
//! - [`copy_format::CopyParser`] turns `COPY ... FROM STDIN` data (text or CSV) into Arrow
//!   batches.

pub mod copy_format;
pub mod cursor;
pub mod ddl;
pub mod lexer;
pub mod literal;
pub mod split;
pub mod temporal;
pub mod users;
