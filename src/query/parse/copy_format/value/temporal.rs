//! `date`, `time` and `timestamp` input, read by [`crate::query::parse::temporal`] in its
//! PostgreSQL syntax.

use super::{trim_space, Bad};
use crate::query::parse::temporal::{self, TemporalError};

impl From<TemporalError> for Bad {
    fn from(error: TemporalError) -> Self {
        match error {
            TemporalError::Syntax => Bad::Syntax,
            TemporalError::FieldRange => Bad::FieldRange,
            TemporalError::DateRange => Bad::DateRange,
            TemporalError::TimestampRange => Bad::TimestampRange,
            TemporalError::TimeZoneRange => Bad::TimeZoneRange,
        }
    }
}

/// A date, as days since the Unix epoch.
#[inline]
pub fn parse_date(value: &[u8]) -> Result<i32, Bad> {
    Ok(temporal::postgres_date(trim_space(value))?)
}

/// A timestamp as a count of 10^-`digits` seconds since the Unix epoch, UTC.
#[inline]
pub fn parse_timestamp(value: &[u8], digits: u32) -> Result<i64, Bad> {
    Ok(temporal::postgres_timestamp(trim_space(value), digits)?)
}

/// A time of day as a count of 10^-`digits` seconds since midnight.
#[inline]
pub fn parse_time(value: &[u8], digits: u32) -> Result<i64, Bad> {
    Ok(temporal::postgres_time(trim_space(value), digits)?)
}
