//! porpoise: a SQL-fronted, partitioned, columnar database.
//!
//! ```text
//!  psql / drivers ──pgwire──► frontend ──► query (DataFusion) ──► datanode ──► storage (Parquet)
//!                                 │              │                   │    ╲
//!                                 │              │                   │     rpc (Arrow Flight) ──► other data nodes
//!                                 └──────────────┴─► controller client ──► controller (openraft:
//!                                                    (in process, or      catalog, users, txn ids,
//!                                                     remote over rpc)    data nodes)
//! ```
//!
//! Module map:
//! - [`catalog`]: the data model shared by every layer: databases, tables, column types,
//!   partition schemes and how a row finds its partition.
//! - [`config`]: typed options of each node role.
//! - [`controller`]: the cluster's brain, an openraft state machine over [`controller::metadata`].
//! - [`datanode`]: partitions, write transactions (stage → commit through the controller →
//!   publish), compaction and scans.
//! - [`storage`]: Parquet files and the per-node file index.
//! - [`query`]: DataFusion sessions, the catalog provider, DDL/DML planning.
//! - [`frontend`]: pgwire: sessions, SCRAM auth, COPY, encoding, SQLSTATE mapping.
//! - [`rpc`]: the node-to-node transport (Arrow Flight; one port per node for pgwire, Flight
//!   and HTTP), node identities (certificates of the cluster's CA) and the mutual TLS that
//!   checks them on every call.
//! - [`standalone`]: one controller and one data node in one process.
//! - [`cluster`]: node processes of a cluster directory (`controller`, `datanode`, `up`) and
//!   their HTTP status pages.
//! - [`fault`]: deterministic crash points for tests.
//! - [`sqlstate`]: the SQLSTATE of every client-facing error ([`sqlstate::SqlState`]) and the
//!   trait by which an error says it and whether a retry may get past it
//!   ([`sqlstate::ErrorCode`]).
//!
//! Layering rule: `cluster, standalone → frontend → query → controller (client API), datanode →
//! storage`; `controller` and `datanode` reach other nodes through `rpc`, which imports nothing
//! above it. `controller` never imports `datanode`, `query` or `frontend`; `storage` imports
//! nothing above it; `sqlstate` and `fault` import nothing of porpoise, and every module may import
//! them; the `porpoise-functions` crate imports nothing from this crate.

/// Locks a std mutex, carrying on past a panic of an earlier holder (the data it guards is
/// kept consistent by its users, not by unwinding).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub mod catalog;
pub mod cluster;
pub mod config;
pub mod controller;
pub mod datanode;
pub mod fault;
pub mod frontend;
pub mod query;
pub mod rpc;
pub mod sqlstate;
pub mod standalone;
pub mod storage;
