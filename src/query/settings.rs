//! PostgreSQL's run-time settings of one session: `SET`, `RESET`, `SHOW`, `current_setting(name
//! [, missing_ok])` and `set_config(name, value, is_local)`, plus `pg_advisory_unlock_all()`.
//!
//! [`Settings`] holds a session's values, starting from the defaults of [`DEFS`]. Drivers read
//! them when they connect (SQLAlchemy `SHOW transaction isolation level` and `SHOW
//! standard_conforming_strings`, asyncpg `current_setting('jit')`); `search_path` also decides
//! which database plain table names are looked up in (see [`Settings::search_path`]).
//!
//! Invariants: a value is stored in PostgreSQL's canonical spelling (`on`/`off` for booleans,
//! quoted identifiers for `search_path`), so `SHOW` prints what PostgreSQL prints. A setting
//! porpoise cannot honour (another time zone than UTC, another encoding than UTF8, a date style
//! other than ISO) is refused with 0A000 rather than accepted and ignored; read-only settings
//! (`server_version`) are 55P02; unknown names are 42704. Names with a dot (`myapp.x`) are
//! custom settings, stored as given, as in PostgreSQL.
//!
//! porpoise takes no advisory locks, so `pg_advisory_unlock_all()` (which asyncpg's pool calls
//! on every connection it takes back) has nothing to release and returns NULL (PostgreSQL's
//! `void`).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::{
    create_udf, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};

use super::QueryError;
use crate::sqlstate::SqlState;

/// The PostgreSQL version porpoise answers as (`server_version`, `version()`).
pub const SERVER_VERSION: &str = "16.6";

/// How a setting's values are checked and spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Cannot be changed (55P02).
    ReadOnly,
    /// Any string.
    Free,
    /// `on` / `off` (also true/false/yes/no/1/0).
    Bool,
    /// Only the default's value is possible (case-insensitive); anything else is 0A000.
    Only,
    TimeZone,
    Encoding,
    DateStyle,
    Isolation,
    SearchPath,
}

/// One known setting: PostgreSQL's spelling of its name, its default, its kind.
struct Def {
    name: &'static str,
    default: &'static str,
    kind: Kind,
    description: &'static str,
}

const fn def(
    name: &'static str,
    default: &'static str,
    kind: Kind,
    description: &'static str,
) -> Def {
    Def {
        name,
        default,
        kind,
        description,
    }
}

/// Every setting porpoise knows.
const DEFS: &[Def] = &[
    def(
        "application_name",
        "",
        Kind::Free,
        "Sets the application name to be reported in statistics and logs.",
    ),
    def(
        "bytea_output",
        "hex",
        Kind::Only,
        "Sets the output format for bytea.",
    ),
    def(
        "client_encoding",
        "UTF8",
        Kind::Encoding,
        "Sets the client's character set encoding.",
    ),
    def(
        "client_min_messages",
        "notice",
        Kind::Free,
        "Sets the message levels that are sent to the client.",
    ),
    def(
        "DateStyle",
        "ISO, MDY",
        Kind::DateStyle,
        "Sets the display format for date and time values.",
    ),
    def(
        "default_transaction_isolation",
        "read committed",
        Kind::Isolation,
        "Sets the transaction isolation level of each new transaction.",
    ),
    def(
        "default_transaction_read_only",
        "off",
        Kind::Bool,
        "Sets the default read-only status of new transactions.",
    ),
    def(
        "extra_float_digits",
        "1",
        Kind::Free,
        "Sets the number of digits displayed for floating-point values.",
    ),
    def(
        "idle_in_transaction_session_timeout",
        "0",
        Kind::Free,
        "Sets the maximum allowed idle time between queries, when in a transaction.",
    ),
    def(
        "integer_datetimes",
        "on",
        Kind::ReadOnly,
        "Shows whether datetimes are integer based.",
    ),
    def(
        "IntervalStyle",
        "postgres",
        Kind::Only,
        "Sets the display format for interval values.",
    ),
    def("jit", "off", Kind::Bool, "Allow JIT compilation."),
    def(
        "lc_collate",
        "C",
        Kind::ReadOnly,
        "Shows the collation order locale.",
    ),
    def(
        "lc_ctype",
        "C",
        Kind::ReadOnly,
        "Shows the character classification and case conversion locale.",
    ),
    def(
        "lc_messages",
        "C",
        Kind::Free,
        "Sets the language in which messages are displayed.",
    ),
    def(
        "lc_monetary",
        "C",
        Kind::Free,
        "Sets the locale for formatting monetary amounts.",
    ),
    def(
        "lc_numeric",
        "C",
        Kind::Free,
        "Sets the locale for formatting numbers.",
    ),
    def(
        "lc_time",
        "C",
        Kind::Free,
        "Sets the locale for formatting date and time values.",
    ),
    def(
        "lock_timeout",
        "0",
        Kind::Free,
        "Sets the maximum allowed duration of any wait for a lock.",
    ),
    def(
        "max_identifier_length",
        "63",
        Kind::ReadOnly,
        "Shows the maximum identifier length.",
    ),
    def("row_security", "on", Kind::Bool, "Enable row security."),
    def(
        "search_path",
        "\"$user\", public",
        Kind::SearchPath,
        "Sets the schema search order for names that are not schema-qualified.",
    ),
    def(
        "server_encoding",
        "UTF8",
        Kind::ReadOnly,
        "Shows the server (database) character set encoding.",
    ),
    def(
        "server_version",
        SERVER_VERSION,
        Kind::ReadOnly,
        "Shows the server version.",
    ),
    def(
        "server_version_num",
        "160006",
        Kind::ReadOnly,
        "Shows the server version as an integer.",
    ),
    def(
        "standard_conforming_strings",
        "on",
        Kind::Only,
        "Causes '...' strings to treat backslashes literally.",
    ),
    def(
        "statement_timeout",
        "0",
        Kind::Free,
        "Sets the maximum allowed duration of any statement.",
    ),
    def(
        "synchronous_commit",
        "on",
        Kind::Free,
        "Sets the current transaction's synchronization level.",
    ),
    def(
        "TimeZone",
        "UTC",
        Kind::TimeZone,
        "Sets the time zone for displaying and interpreting time stamps.",
    ),
    def(
        "timezone_abbreviations",
        "Default",
        Kind::Free,
        "Selects a file of time zone abbreviations.",
    ),
    def(
        "transaction_isolation",
        "read committed",
        Kind::Isolation,
        "Sets the current transaction's isolation level.",
    ),
    def(
        "transaction_read_only",
        "off",
        Kind::Bool,
        "Sets the current transaction's read-only status.",
    ),
];

fn find(name: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// The name `SHOW` uses for the setting `words` names (`transaction isolation level` is
/// `transaction_isolation`, `time zone` is `TimeZone`), or 42704.
pub fn show_name(words: &str) -> Result<String, QueryError> {
    let lower = words.to_ascii_lowercase();
    let name = match lower.as_str() {
        "transaction isolation level" => "transaction_isolation",
        "time zone" => "timezone",
        "session authorization" => "session_authorization",
        other => other,
    };
    if name == "session_authorization" || name == "is_superuser" {
        return Ok(name.to_string());
    }
    match find(name) {
        Some(d) => Ok(d.name.to_string()),
        None if name.contains('.') => Ok(name.to_string()),
        None => Err(unrecognized(words)),
    }
}

fn unrecognized(name: &str) -> QueryError {
    QueryError::other(
        SqlState::UNDEFINED_OBJECT,
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

/// One session's settings.
#[derive(Debug)]
pub struct Settings {
    /// Values that differ from the defaults, by lower-case name.
    values: RwLock<BTreeMap<String, String>>,
    user: String,
    superuser: bool,
}

impl Settings {
    pub fn new(user: &str, superuser: bool) -> Arc<Settings> {
        Arc::new(Settings {
            values: RwLock::default(),
            user: user.to_string(),
            superuser,
        })
    }

    /// The value of setting `name` (any case); `None` if there is no such setting.
    pub fn get(&self, name: &str) -> Option<String> {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "session_authorization" => return Some(self.user.clone()),
            "is_superuser" => return Some(if self.superuser { "on" } else { "off" }.into()),
            _ => {}
        }
        if let Some(v) = self.values.read().ok()?.get(&lower) {
            return Some(v.clone());
        }
        find(&lower).map(|d| d.default.to_string())
    }

    /// Every known setting with its value and description, in name order (`SHOW ALL`).
    pub fn all(&self) -> Vec<(String, String, String)> {
        let mut out: Vec<(String, String, String)> = DEFS
            .iter()
            .map(|d| {
                (
                    d.name.to_string(),
                    self.get(d.name).unwrap_or_default(),
                    d.description.to_string(),
                )
            })
            .collect();
        out.sort_by_key(|(n, _, _)| n.to_ascii_lowercase());
        out
    }

    /// `SET name = value` (`values` as the statement spelled them; empty is `DEFAULT`).
    pub fn set(&self, name: &str, values: &[String]) -> Result<(), QueryError> {
        let lower = name.to_ascii_lowercase();
        let Some(d) = find(&lower) else {
            if lower.contains('.') {
                return self.store(lower, values.join(", "));
            }
            return Err(unrecognized(name));
        };
        if values.is_empty() {
            return self.reset(name);
        }
        let single = || -> Result<&String, QueryError> {
            match values {
                [v] => Ok(v),
                _ => Err(QueryError::other(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("SET {} takes only one argument", d.name),
                )),
            }
        };
        let refuse = |value: &str, why: &str| {
            QueryError::other(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!(
                    "invalid value for parameter \"{}\": \"{value}\" ({why})",
                    d.name
                ),
            )
        };
        let value = match d.kind {
            Kind::ReadOnly => {
                return Err(QueryError::other(
                    SqlState::CANT_CHANGE_RUNTIME_PARAM,
                    format!("parameter \"{}\" cannot be changed", d.name),
                ))
            }
            Kind::Free => single()?.clone(),
            Kind::Only => {
                let v = single()?;
                if !v.eq_ignore_ascii_case(d.default) {
                    return Err(refuse(v, &format!("porpoise supports only {}", d.default)));
                }
                d.default.to_string()
            }
            Kind::Bool => bool_value(single()?).ok_or_else(|| {
                QueryError::other(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("parameter \"{}\" requires a Boolean value", d.name),
                )
            })?,
            Kind::TimeZone => {
                let v = single()?;
                let utc = [
                    "utc",
                    "gmt",
                    "etc/utc",
                    "etc/gmt",
                    "z",
                    "zulu",
                    "uct",
                    "universal",
                    "0",
                    "+0",
                    "+00",
                    "+00:00",
                    "-00",
                ];
                if !utc.contains(&v.to_ascii_lowercase().as_str()) {
                    return Err(refuse(v, "porpoise sessions use UTC"));
                }
                if v.eq_ignore_ascii_case("utc") {
                    "UTC".into()
                } else {
                    v.clone()
                }
            }
            Kind::Encoding => {
                let v = single()?;
                let norm: String = v.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
                if !["utf8", "unicode"].contains(&norm.to_ascii_lowercase().as_str()) {
                    return Err(refuse(v, "porpoise speaks UTF8 only"));
                }
                "UTF8".into()
            }
            Kind::DateStyle => {
                let joined = values.join(", ");
                let words: Vec<String> = joined
                    .split([',', ' '])
                    .filter(|w| !w.is_empty())
                    .map(str::to_ascii_uppercase)
                    .collect();
                let order = words.iter().find(|w| {
                    [
                        "MDY",
                        "DMY",
                        "YMD",
                        "US",
                        "EURO",
                        "EUROPEAN",
                        "NONEURO",
                        "NONEUROPEAN",
                    ]
                    .contains(&w.as_str())
                });
                if words
                    .iter()
                    .any(|w| ["SQL", "GERMAN", "POSTGRES"].contains(&w.as_str()))
                {
                    return Err(refuse(&joined, "porpoise prints dates in the ISO style"));
                }
                let order = match order.map(String::as_str) {
                    Some("DMY" | "EURO" | "EUROPEAN") => "DMY",
                    Some("YMD") => "YMD",
                    Some(_) => "MDY",
                    None => "MDY",
                };
                format!("ISO, {order}")
            }
            Kind::Isolation => {
                let v = single()?.to_ascii_lowercase();
                if ![
                    "read committed",
                    "repeatable read",
                    "serializable",
                    "read uncommitted",
                ]
                .contains(&v.as_str())
                {
                    return Err(QueryError::other(
                        SqlState::INVALID_PARAMETER_VALUE,
                        format!("invalid value for parameter \"{}\": \"{v}\"", d.name),
                    ));
                }
                v
            }
            Kind::SearchPath => values
                .iter()
                .flat_map(|v| split_list(v))
                .map(|s| quote_ident(&s))
                .collect::<Vec<_>>()
                .join(", "),
        };
        self.store(lower, value)
    }

    /// `RESET name`.
    pub fn reset(&self, name: &str) -> Result<(), QueryError> {
        let lower = name.to_ascii_lowercase();
        match find(&lower) {
            Some(d) if d.kind == Kind::ReadOnly => Err(QueryError::other(
                SqlState::CANT_CHANGE_RUNTIME_PARAM,
                format!("parameter \"{}\" cannot be changed", d.name),
            )),
            None if !lower.contains('.') => Err(unrecognized(name)),
            _ => {
                if let Ok(mut v) = self.values.write() {
                    v.remove(&lower);
                }
                Ok(())
            }
        }
    }

    /// `RESET ALL`.
    pub fn reset_all(&self) {
        if let Ok(mut v) = self.values.write() {
            v.clear();
        }
    }

    fn store(&self, lower: String, value: String) -> Result<(), QueryError> {
        let mut values = self
            .values
            .write()
            .map_err(|_| QueryError::other(SqlState::INTERNAL_ERROR, "settings lock poisoned"))?;
        values.insert(lower, value);
        Ok(())
    }

    /// The schemas of `search_path`, in order, unquoted; `$user` is the session's user.
    pub fn search_path(&self) -> Vec<String> {
        let path = self.get("search_path").unwrap_or_default();
        split_list(&path)
            .into_iter()
            .map(|s| if s == "$user" { self.user.clone() } else { s })
            .collect()
    }
}

fn bool_value(v: &str) -> Option<String> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "t" | "y" => Some("on".into()),
        "off" | "false" | "no" | "0" | "f" | "n" => Some("off".into()),
        _ => None,
    }
}

/// Splits a list setting (`"$user", public`) into unquoted names.
fn split_list(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = v.chars().peekable();
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            ',' if !quoted => {
                push_name(&mut out, &mut cur, was_quoted);
                was_quoted = false;
            }
            c if c.is_whitespace() && !quoted => {}
            c => cur.push(c),
        }
    }
    push_name(&mut out, &mut cur, was_quoted);
    out
}

fn push_name(out: &mut Vec<String>, cur: &mut String, quoted: bool) {
    if !cur.is_empty() || quoted {
        out.push(std::mem::take(cur));
    }
}

/// PostgreSQL's `quote_ident`: quoted unless a lower-case identifier.
pub fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// `current_setting`, `set_config` and `pg_advisory_unlock_all` over one session's settings.
pub fn udfs(settings: &Arc<Settings>) -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(CurrentSetting::new(settings.clone())),
        ScalarUDF::new_from_impl(SetConfig::new(settings.clone())),
        create_udf(
            "pg_advisory_unlock_all",
            vec![],
            DataType::Utf8,
            Volatility::Volatile,
            Arc::new(|_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
        ),
    ]
}

fn external(e: QueryError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[derive(Debug)]
struct CurrentSetting {
    signature: Signature,
    settings: Arc<Settings>,
}

impl PartialEq for CurrentSetting {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.settings, &other.settings)
    }
}
impl Eq for CurrentSetting {}
impl std::hash::Hash for CurrentSetting {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.settings), state)
    }
}

impl CurrentSetting {
    fn new(settings: Arc<Settings>) -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
                ],
                // Volatile: a SET between two executions of one prepared statement shows.
                Volatility::Volatile,
            ),
            settings,
        }
    }
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        make_scalar_function(
            |arrays: &[ArrayRef]| {
                let names = arrays[0].as_string::<i32>();
                let missing_ok = arrays.get(1).map(|a| a.as_boolean());
                let mut values = StringBuilder::new();
                for i in 0..names.len() {
                    if names.is_null(i) {
                        values.append_null();
                        continue;
                    }
                    let name = names.value(i);
                    match self.settings.get(name) {
                        Some(v) => values.append_value(v),
                        None if missing_ok.is_some_and(|m| m.value(i)) => values.append_null(),
                        None => return Err(external(unrecognized(name))),
                    }
                }
                Ok(Arc::new(values.finish()) as ArrayRef)
            },
            vec![],
        )(&args.args)
    }
}

/// `set_config(name, value, is_local)`: `SET` as a function; returns the new value.
#[derive(Debug)]
struct SetConfig {
    signature: Signature,
    settings: Arc<Settings>,
}

impl PartialEq for SetConfig {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.settings, &other.settings)
    }
}
impl Eq for SetConfig {}
impl std::hash::Hash for SetConfig {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.settings), state)
    }
}

impl SetConfig {
    fn new(settings: Arc<Settings>) -> Self {
        Self {
            signature: Signature::exact(
                vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
                Volatility::Volatile,
            ),
            settings,
        }
    }
}

impl ScalarUDFImpl for SetConfig {
    fn name(&self) -> &str {
        "set_config"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        make_scalar_function(
            |arrays: &[ArrayRef]| {
                let names = arrays[0].as_string::<i32>();
                let new = arrays[1].as_string::<i32>();
                let mut values = StringBuilder::new();
                for i in 0..names.len() {
                    if names.is_null(i) {
                        return Err(external(QueryError::other(
                            SqlState::INVALID_PARAMETER_VALUE,
                            "SET requires parameter name",
                        )));
                    }
                    let name = names.value(i);
                    let given: Vec<String> = if new.is_null(i) {
                        vec![]
                    } else {
                        vec![new.value(i).to_string()]
                    };
                    self.settings.set(name, &given).map_err(external)?;
                    values.append_option(self.settings.get(name));
                }
                Ok(Arc::new(values.finish()) as ArrayRef)
            },
            vec![],
        )(&args.args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_found_by_any_case() {
        let s = Settings::new("admin", true);
        assert_eq!(s.get("JIT").as_deref(), Some("off"));
        assert_eq!(s.get("timezone").as_deref(), Some("UTC"));
        assert_eq!(s.get("nosuch"), None);
    }

    #[test]
    fn search_path_is_kept_quoted_and_read_unquoted() {
        let s = Settings::new("admin", true);
        assert_eq!(s.search_path(), vec!["admin", "public"]);
        s.set("search_path", &["\"dfs://db\"".into(), "public".into()])
            .unwrap();
        assert_eq!(
            s.get("search_path").as_deref(),
            Some("\"dfs://db\", public")
        );
        assert_eq!(s.search_path(), vec!["dfs://db", "public"]);
    }

    #[test]
    fn refused_values_keep_postgres_codes() {
        let s = Settings::new("admin", true);
        let code = |e: QueryError| crate::sqlstate::ErrorCode::sqlstate(&e);
        assert_eq!(
            code(s.set("server_version", &["1".into()]).unwrap_err()),
            SqlState::CANT_CHANGE_RUNTIME_PARAM
        );
        assert_eq!(
            code(s.set("nosuch", &["1".into()]).unwrap_err()),
            SqlState::UNDEFINED_OBJECT
        );
        assert_eq!(
            code(s.set("TimeZone", &["Europe/Berlin".into()]).unwrap_err()),
            SqlState::FEATURE_NOT_SUPPORTED
        );
        s.set("datestyle", &["iso".into(), "dmy".into()]).unwrap();
        assert_eq!(s.get("DateStyle").as_deref(), Some("ISO, DMY"));
    }
}
