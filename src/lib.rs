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
//! - [`controller`]: the cluster's brain, an openraft state machine over [`controller::metadata`];
//!   the rest of the server reads it through [`controller::view::MetadataView`].
//! - [`datanode`]: partitions, write transactions (stage → commit through the controller →
//!   publish), compaction and scans.
//! - [`storage`]: Parquet files and the per-node file index.
//! - [`query`]: DataFusion sessions, the catalog provider, DDL/DML planning.
//! - [`frontend`]: pgwire: sessions, SCRAM auth, COPY, encoding, SQLSTATE mapping.
//! - [`replication`]: cross-cluster replication: the queues' model, the messages between
//!   clusters, the master's and the slave's sides (where a task is created, pulled, scheduled
//!   and applied: see its module docs).
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
//! # Layering rule
//!
//! A file belongs to the entry below that is the longest prefix of its module path (a file of
//! `controller::raft` belongs to `controller`), and imports, by `use` or by a path written in
//! the code, only from its own entry or from entries on lower layers; no files import each
//! other in a circle. The crate root (this file, with helpers such as `lock`) is below every
//! layer. `tests/architecture` reads the list below and checks every file of `src/` against
//! it, so adding a layer or an entry is a line here.
//!
//! Layers, top to bottom:
//!
//! - `standalone`: a controller and a data node in one process, started like cluster nodes
//! - `cluster`: the node processes of a cluster directory and their status pages; the
//!   composition roots that register each role's Flight services
//! - `frontend`: pgwire
//! - `replication::slave::seed`: a slave data node installs seeds (as the execution user of
//!   `apply`)
//! - `replication::slave::apply`: a slave data node applies tasks through the query layer
//! - `query`: DataFusion over the local data node and the controller client
//! - `replication::master::serve`, `replication::status`, `replication::check`: what a master
//!   data node serves slaves; the rows of the replication status functions; the comparison
//!   of a slave with its master
//! - `datanode`: writes to the controller through `controller::client`, reads its metadata
//! - `replication::master`, `replication::slave`: a write's task and its task data, the pull
//!   service; the puller, scheduler, workers and file fetching of a slave
//! - `controller`: never imports `datanode`, `query` or `frontend`
//! - `replication::protocol`, `replication::digest`: the messages between the clusters' nodes;
//!   partition digests
//! - `replication::model`, `rpc`, `storage`, `config`: the queues' pure state, the transport,
//!   the files of one data node, node options
//! - `catalog`: the data model shared by every layer
//! - `fault`, `sqlstate`: crash points for tests; SQLSTATE codes and the trait every
//!   client-facing error implements
//! - `replication`: only declares its parts
//!
//! The `porpoise-functions` crate imports nothing from this crate.

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
pub mod replication;
pub mod rpc;
pub mod sqlstate;
pub mod standalone;
pub mod storage;
