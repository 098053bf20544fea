//! TODO
pub mod copy_format;
