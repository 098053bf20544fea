//! Typed options of each node role.
