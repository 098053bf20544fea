//! TODO

pub mod ddl;
pub mod literal;
