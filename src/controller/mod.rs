//! The controller: the cluster's brain. An openraft state machine ([`raft`]) over the
//! cluster metadata ([`metadata`]): databases, tables, partitions, users and transaction ids.
//! Only metadata goes through raft, never row data. Its client-facing errors are in [`error`].

pub mod client;
pub mod error;
pub mod feed;
pub mod metadata;
pub mod privilege;
pub mod raft;
pub mod remote;
pub mod replication;
pub mod secret;
pub mod service;
pub mod view;
