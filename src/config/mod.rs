//! Configuration files in DolphinDB's format: `key=value` lines, `#` comments, blank lines
//! ignored. Each role reads its keys into a typed options struct; a key the role does not know,
//! or a value that does not parse, is an error naming the file, the line and the key.
//!
//! Command-line flags override the files.

pub mod cluster;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::catalog::NewValuePolicy;

/// A configuration error, pointing at the offending line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected key=value, found {text:?}")]
    Syntax {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{path}:{line}: unknown key {key:?}")]
    UnknownKey {
        path: PathBuf,
        line: usize,
        key: String,
    },
    #[error("{path}:{line}: key {key:?} is set twice (first on line {first})")]
    Duplicate {
        path: PathBuf,
        line: usize,
        key: String,
        first: usize,
    },
    #[error("{path}:{line}: bad value {value:?} for {key}: {reason}")]
    BadValue {
        path: PathBuf,
        line: usize,
        key: String,
        value: String,
        reason: String,
    },
}

/// The parsed lines of one file: key → (value, line number).
#[derive(Debug, Default, Clone)]
pub struct CfgFile {
    pub path: PathBuf,
    entries: BTreeMap<String, (String, usize)>,
}

impl CfgFile {
    /// Reads and parses a file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the contents of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut entries: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let Some((key, value)) = content.split_once('=') else {
                return Err(ConfigError::Syntax {
                    path: path.to_path_buf(),
                    line,
                    text: raw.to_string(),
                });
            };
            let key = key.trim().to_string();
            if key.is_empty() {
                return Err(ConfigError::Syntax {
                    path: path.to_path_buf(),
                    line,
                    text: raw.to_string(),
                });
            }
            if let Some((_, first)) = entries.get(&key) {
                return Err(ConfigError::Duplicate {
                    path: path.to_path_buf(),
                    line,
                    key,
                    first: *first,
                });
            }
            entries.insert(key, (value.trim().to_string(), line));
        }
        Ok(CfgFile {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// Fails on the first key not in `known`.
    pub fn check_keys(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self
            .entries
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            Some((key, (_, line))) => Err(ConfigError::UnknownKey {
                path: self.path.clone(),
                line: *line,
                key: key.clone(),
            }),
            None => Ok(()),
        }
    }

    /// An error for the value of `key` (at its line, or line 0 if unset).
    pub fn bad_value(&self, key: &str, reason: &str) -> ConfigError {
        let (value, line) = self.entries.get(key).cloned().unwrap_or_default();
        ConfigError::BadValue {
            path: self.path.clone(),
            line,
            key: key.to_string(),
            value,
            reason: reason.to_string(),
        }
    }

    /// The typed value of `key`, if set.
    pub fn get<T: FromStr>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.entries.get(key) {
            None => Ok(None),
            Some((value, line)) => {
                value
                    .parse()
                    .map(Some)
                    .map_err(|e: T::Err| ConfigError::BadValue {
                        path: self.path.clone(),
                        line: *line,
                        key: key.to_string(),
                        value: value.clone(),
                        reason: e.to_string(),
                    })
            }
        }
    }
}

impl FromStr for NewValuePolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "add" => Ok(NewValuePolicy::Add),
            "fail" => Ok(NewValuePolicy::Fail),
            "skip" => Ok(NewValuePolicy::Skip),
            _ => Err("expected add, fail or skip".into()),
        }
    }
}

/// How a node serves pgwire clients: keys of `porpoise.cfg` and `cluster.cfg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgwireSettings {
    /// `pgwireSSLOnly`: refuse logins outside TLS (28000), like `hostssl` lines in
    /// pg_hba.conf. Default false.
    pub tls_only: bool,
    /// `authenticationTimeout` (seconds, 1 to 600): a client that has not logged in after this
    /// long is disconnected (PostgreSQL's `authentication_timeout`). Default 60.
    pub auth_timeout: std::time::Duration,
    /// `maxConnections`: pgwire sessions at once; one more is refused with 53300 (DolphinDB's
    /// key). Default 512.
    pub max_connections: usize,
}

impl Default for PgwireSettings {
    fn default() -> Self {
        PgwireSettings {
            tls_only: false,
            auth_timeout: std::time::Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

impl PgwireSettings {
    pub fn from_file(f: &CfgFile) -> Result<Self, ConfigError> {
        let default = PgwireSettings::default();
        let auth_timeout = match f.get::<u64>("authenticationTimeout")? {
            None => default.auth_timeout,
            Some(s) if (1..=600).contains(&s) => std::time::Duration::from_secs(s),
            Some(_) => {
                return Err(f.bad_value("authenticationTimeout", "expected 1 to 600 seconds"))
            }
        };
        let max_connections = match f.get::<usize>("maxConnections")? {
            None => default.max_connections,
            Some(0) => return Err(f.bad_value("maxConnections", "must be at least 1")),
            Some(n) => n,
        };
        Ok(PgwireSettings {
            tls_only: f
                .get::<cluster::CfgBool>("pgwireSSLOnly")?
                .is_some_and(|b| b.0),
            auth_timeout,
            max_connections,
        })
    }
}

/// How much a node that runs queries lets one client take: DataFusion's memory pool of the
/// node, one query's share of it, and the longest COPY line. The same keys in a standalone
/// server's `porpoise.cfg` and a cluster's `cluster.cfg` (documented in `config/README.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `maxMemSize` (GB, as in DolphinDB): the memory pool every query of the node shares.
    pub node_memory: usize,
    /// `memLimitOfQueryResult` (GB, as in DolphinDB): what one query may hold of the pool,
    /// and the largest value one function call may build (`repeat`, `lpad`, ...).
    pub query_memory: usize,
    /// `maxCopyLineSize` (MB): the longest line (record) COPY ... FROM STDIN buffers.
    pub copy_line: usize,
}

const GB: f64 = (1u64 << 30) as f64;

/// Bytes of this many MB.
pub const MB: usize = 1 << 20;

impl Limits {
    /// The default `maxCopyLineSize` in MB: PostgreSQL takes fields up to 1 GB; a line of
    /// 64 MB is already far beyond any sensible COPY record.
    pub const DEFAULT_COPY_LINE_MB: usize = 64;

    /// Reads the keys of `f`, defaulting what is unset: `maxMemSize` half the machine's memory,
    /// `memLimitOfQueryResult` DolphinDB's min(50 % of `maxMemSize`, 8 GB). A
    /// `memLimitOfQueryResult` above a `maxMemSize` the file sets is an error; above the
    /// default one it is cut to it.
    pub fn from_file(f: &CfgFile) -> Result<Self, ConfigError> {
        let gb = |key: &str| -> Result<Option<usize>, ConfigError> {
            match f.get::<f64>(key)? {
                None => Ok(None),
                Some(g) if g.is_finite() && g > 0.0 => Ok(Some((g * GB) as usize)),
                Some(_) => Err(f.bad_value(key, "expected a positive number of GB")),
            }
        };
        let node_set = gb("maxMemSize")?;
        let node_memory = node_set.unwrap_or_else(default_node_memory);
        let query_memory = match gb("memLimitOfQueryResult")? {
            Some(q) if q > node_memory && node_set.is_some() => {
                return Err(f.bad_value(
                    "memLimitOfQueryResult",
                    "one query cannot have more than the node's maxMemSize",
                ))
            }
            // A default maxMemSize depends on the machine: the file stays valid everywhere.
            Some(q) => q.min(node_memory),
            None => (node_memory / 2).min(8 << 30),
        };
        let copy_line = match f.get::<usize>("maxCopyLineSize")? {
            None => Self::DEFAULT_COPY_LINE_MB * MB,
            Some(mb) if (1..=1024).contains(&mb) => mb * MB,
            Some(_) => return Err(f.bad_value("maxCopyLineSize", "expected 1 to 1024 (MB)")),
        };
        Ok(Limits {
            node_memory,
            query_memory,
            copy_line,
        })
    }
}

impl Default for Limits {
    fn default() -> Self {
        let node_memory = default_node_memory();
        Limits {
            node_memory,
            query_memory: (node_memory / 2).min(8 << 30),
            copy_line: Self::DEFAULT_COPY_LINE_MB * MB,
        }
    }
}

/// Half of the machine's memory (`MemTotal` of `/proc/meminfo`), or 4 GB where it cannot be
/// read: the rest is left to Parquet buffers, the raft log and the operating system.
fn default_node_memory() -> usize {
    let total_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        });
    match total_kb {
        Some(kb) if kb > 0 => kb * 1024 / 2,
        _ => 4 << 30,
    }
}

/// `protectedMode` (Redis's name, default true): a node listening on an address other than
/// loopback does not start while `admin` still has its default password.
pub fn protected_mode(f: &CfgFile) -> Result<bool, ConfigError> {
    Ok(f.get::<cluster::CfgBool>("protectedMode")?
        .is_none_or(|b| b.0))
}

/// The keys of a standalone server's `porpoise.cfg` (documented in `config/README.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct StandaloneFile {
    /// `home`: where data lives.
    pub home: Option<PathBuf>,
    /// `port`: the pgwire port.
    pub port: Option<u16>,
    /// `listenHost`: the address to listen on.
    pub listen_host: Option<std::net::IpAddr>,
    /// `newValuePartitionPolicy`: add | fail | skip.
    pub new_value_policy: Option<NewValuePolicy>,
    /// `compactionMinFiles`: files in a partition that trigger compaction.
    pub compaction_min_files: Option<usize>,
    /// `snapshotRetentionSeconds`: how long replaced files stay readable by older queries.
    pub snapshot_retention: Option<std::time::Duration>,
    /// `enableHTTPS`: accepted for DolphinDB compatibility; the server always serves TLS with
    /// its node certificate (`<home>/certs/node.crt`).
    pub enable_https: bool,
    /// `pgwireSSLOnly`, `authenticationTimeout`, `maxConnections`.
    pub pgwire: PgwireSettings,
    /// `maxMemSize`, `memLimitOfQueryResult`, `maxCopyLineSize`.
    pub limits: Limits,
    /// `protectedMode`: refuse a non-loopback address while admin has the default password.
    pub protected_mode: bool,
}

impl Default for StandaloneFile {
    fn default() -> Self {
        StandaloneFile {
            home: None,
            port: None,
            listen_host: None,
            new_value_policy: None,
            compaction_min_files: None,
            snapshot_retention: None,
            enable_https: false,
            pgwire: PgwireSettings::default(),
            limits: Limits::default(),
            protected_mode: true,
        }
    }
}

impl StandaloneFile {
    pub const KEYS: &'static [&'static str] = &[
        "home",
        "port",
        "listenHost",
        "newValuePartitionPolicy",
        "compactionMinFiles",
        "snapshotRetentionSeconds",
        "enableHTTPS",
        "pgwireSSLOnly",
        "authenticationTimeout",
        "maxConnections",
        "maxMemSize",
        "memLimitOfQueryResult",
        "maxCopyLineSize",
        "protectedMode",
    ];

    /// Reads `<dir>/porpoise.cfg`.
    pub fn read_dir(dir: &Path) -> Result<Self, ConfigError> {
        Self::from_file(&CfgFile::read(&dir.join("porpoise.cfg"))?)
    }

    pub fn from_file(f: &CfgFile) -> Result<Self, ConfigError> {
        f.check_keys(Self::KEYS)?;
        let compaction_min_files: Option<usize> = f.get("compactionMinFiles")?;
        if compaction_min_files.is_some_and(|n| n < 2) {
            return Err(f.bad_value("compactionMinFiles", "must be at least 2"));
        }
        Ok(StandaloneFile {
            home: f.get("home")?,
            port: f.get("port")?,
            listen_host: f.get("listenHost")?,
            new_value_policy: f.get("newValuePartitionPolicy")?,
            compaction_min_files,
            snapshot_retention: f
                .get::<u64>("snapshotRetentionSeconds")?
                .map(std::time::Duration::from_secs),
            enable_https: f
                .get::<cluster::CfgBool>("enableHTTPS")?
                .is_some_and(|b| b.0),
            pgwire: PgwireSettings::from_file(f)?,
            limits: Limits::from_file(f)?,
            protected_mode: protected_mode(f)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_comments_and_types() {
        let f = CfgFile::parse(
            Path::new("x.cfg"),
            "# comment\nport = 9000 # trailing\n\nnewValuePartitionPolicy=fail\n",
        )
        .unwrap();
        let s = StandaloneFile::from_file(&f).unwrap();
        assert_eq!(s.port, Some(9000));
        assert_eq!(s.new_value_policy, Some(NewValuePolicy::Fail));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let f = CfgFile::parse(Path::new("x.cfg"), "port=1\nprot=2\n").unwrap();
        let e = StandaloneFile::from_file(&f).unwrap_err().to_string();
        assert_eq!(e, "x.cfg:2: unknown key \"prot\"");
        let f = CfgFile::parse(Path::new("x.cfg"), "\nport=big\n").unwrap();
        let e = StandaloneFile::from_file(&f).unwrap_err().to_string();
        assert!(e.starts_with("x.cfg:2: bad value \"big\" for port"), "{e}");
        assert!(CfgFile::parse(Path::new("x.cfg"), "port\n").is_err());
        assert!(CfgFile::parse(Path::new("x.cfg"), "port=1\nport=2\n").is_err());
    }

    #[test]
    fn pgwire_keys_parse_and_bad_values_are_refused() {
        let f = CfgFile::parse(
            Path::new("x.cfg"),
            "pgwireSSLOnly=true\nauthenticationTimeout=5\nmaxConnections=3\n",
        )
        .unwrap();
        let s = StandaloneFile::from_file(&f).unwrap();
        assert_eq!(
            s.pgwire,
            PgwireSettings {
                tls_only: true,
                auth_timeout: std::time::Duration::from_secs(5),
                max_connections: 3,
            }
        );
        for bad in [
            "maxConnections=0",
            "authenticationTimeout=0",
            "authenticationTimeout=601",
        ] {
            let f = CfgFile::parse(Path::new("x.cfg"), bad).unwrap();
            assert!(StandaloneFile::from_file(&f).is_err(), "{bad}");
        }
    }

    #[test]
    fn shipped_standalone_config_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/standalone");
        let s = StandaloneFile::read_dir(&dir).unwrap();
        assert_eq!(s.port, Some(8902));
    }

    #[test]
    fn limits_are_in_dolphindb_units() {
        let f = CfgFile::parse(
            Path::new("x.cfg"),
            "maxMemSize=2\nmemLimitOfQueryResult=0.5\nmaxCopyLineSize=16\nprotectedMode=false\n",
        )
        .unwrap();
        let s = StandaloneFile::from_file(&f).unwrap();
        assert_eq!(s.limits.node_memory, 2 << 30);
        assert_eq!(s.limits.query_memory, 512 << 20);
        assert_eq!(s.limits.copy_line, 16 << 20);
        assert!(!s.protected_mode);
        let f = CfgFile::parse(
            Path::new("x.cfg"),
            "maxMemSize=1\nmemLimitOfQueryResult=2\n",
        )
        .unwrap();
        let e = StandaloneFile::from_file(&f).unwrap_err().to_string();
        assert!(e.contains("memLimitOfQueryResult"), "{e}");
        let f = CfgFile::parse(Path::new("x.cfg"), "maxMemSize=-1\n").unwrap();
        assert!(StandaloneFile::from_file(&f).is_err());
        let f = CfgFile::parse(Path::new("x.cfg"), "port=1\n").unwrap();
        assert!(StandaloneFile::from_file(&f).unwrap().protected_mode);
    }
}
