pub mod copy_format;
