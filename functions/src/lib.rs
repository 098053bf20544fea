//! porpoise's built-in SQL functions, one per file, in DataFusion's `ScalarUDFImpl` /
//! `TableFunctionImpl` style. The crate is pure: it reaches the cluster only through a small
//! trait the server implements, and imports nothing from the server.
//!
//! The replication functions (`setDatabaseForClusterReplication`, `getSlaveReplicationStatus`,
//! ...) arrive with cross-cluster replication; until then the crate is empty.
