//! The controller's raft group (openraft). Being written.
