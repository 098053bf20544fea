//! Cross-cluster replication, DolphinDB-style: a master cluster queues one task per committed
//! change to a replicated database; slave clusters pull the tasks, spread them over execution
//! queues and apply each exactly once.
//!
//! Where a task goes, end to end:
//! - **created**: a write transaction's commit entry carries its task
//!   ([`model::TxnTask`], built in [`crate::datanode`]'s commit) and the controller queues it
//!   with the commit ([`crate::controller`]'s `replication.rs`); a DDL command queues its own.
//!   The rows stay on the coordinating data node as task data ([`master::task_data`]).
//! - **pulled**: the slave controller's [`slave::puller`] long-polls the master controller's
//!   [`master::pull`] service and records the tasks through its raft group.
//! - **scheduled**: [`slave::scheduler`] runs each execution queue's first unfinished group on
//!   the queue's data node.
//! - **applied**: on that data node [`slave::apply`] replays the task, taking an APPEND's
//!   Parquet files as they are when it can ([`slave::files`]) or its task data
//!   ([`master::serve`] answers both on the master's data nodes), and finishes it in the same
//!   raft entry as its effect.
//!
//! [`model`] is the pure state of both sides' queues; [`protocol`] the messages between the
//! clusters' nodes.

pub mod check;
pub mod digest;
pub mod master;
pub mod model;
pub mod protocol;
pub mod slave;
pub mod status;
