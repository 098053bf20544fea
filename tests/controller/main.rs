//! Tests of the controller's raft layer: openraft's storage suite on the redb log store and the
//! snapshot-file state machine, and restarts of a single-node controller group.

mod restart;
mod storage_suite;
