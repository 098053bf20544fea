//! A cluster directory in DolphinDB's layout: `controller.cfg` (controller keys),
//! `cluster.nodes` (`host:port:alias,role` per node) and `cluster.cfg` (data-node keys, the same
//! for every data node). Every key is typed and documented in `config/README.md`; a key not
//! listed here, or a value that does not parse, is an error naming the file, line and key.
//!
//! The node processes that read it are in [`crate::cluster`] (`porpoise up`, `controller`,
//! `datanode`); the example directories in `config/` are loaded by a test.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{CfgFile, ConfigError};
use crate::catalog::NewValuePolicy;

/// A DolphinDB-style boolean: `true`/`false` (also `1`/`0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CfgBool(pub bool);

impl FromStr for CfgBool {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(CfgBool(true)),
            "false" | "0" => Ok(CfgBool(false)),
            _ => Err("expected true or false".into()),
        }
    }
}

/// `clusterReplicationMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicationMode {
    Master,
    Slave,
}

impl FromStr for ReplicationMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "master" => Ok(ReplicationMode::Master),
            "slave" => Ok(ReplicationMode::Slave),
            _ => Err("expected master or slave".into()),
        }
    }
}

/// A positive integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Positive(pub u32);

impl FromStr for Positive {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.parse::<u32>() {
            Ok(n) if n > 0 => Ok(Positive(n)),
            _ => Err("expected a positive integer".into()),
        }
    }
}

/// `slaveReplicationDBScope`: comma-separated `dfs://` paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbScope(pub Vec<String>);

impl FromStr for DbScope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let dbs: Vec<String> = s.split(',').map(|d| d.trim().to_string()).collect();
        if dbs
            .iter()
            .any(|d| !d.starts_with("dfs://") || d.len() == "dfs://".len())
        {
            return Err(
                "expected comma-separated database paths such as dfs://db1,dfs://db2".into(),
            );
        }
        Ok(DbScope(dbs))
    }
}

/// `clusterReplicationPublicSites`: comma-separated `host:port:alias` sites.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicSites(pub Vec<(String, u16, String)>);

impl FromStr for PublicSites {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || "expected comma-separated host:port:alias sites".to_string();
        s.split(',')
            .map(|site| {
                let parts: Vec<&str> = site.trim().split(':').collect();
                let [host, port, alias] = parts.as_slice() else {
                    return Err(bad());
                };
                let port = port.parse().map_err(|_| bad())?;
                if host.is_empty() || alias.is_empty() {
                    return Err(bad());
                }
                Ok((host.to_string(), port, alias.to_string()))
            })
            .collect::<Result<_, _>>()
            .map(PublicSites)
    }
}

/// The TLS keys, the same in `controller.cfg` and `cluster.cfg`. Every connection between
/// nodes is mutual TLS unless `insecure=true`; these keys say which other cluster to trust.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsSettings {
    /// `enableHTTPS` (DolphinDB's): nodes always serve TLS now; kept so DolphinDB
    /// configurations load. Default false.
    pub https: bool,
    /// `enableClusterReplicationSSL` (DolphinDB's): replication between clusters always runs
    /// over mutual TLS now; kept so DolphinDB configurations load. Default false.
    pub replication_ssl: bool,
    /// `clusterReplicationSSLCAFile` (slave): the master cluster's CA certificate (its
    /// `ca.crt`), which the master's nodes must chain to. A slave needs it.
    pub replication_ca_file: Option<PathBuf>,
    /// `clusterReplicationSlaveCAFile` (master, ours): the CA certificates of the slave
    /// clusters this master admits, one PEM file. Unset: no slave is admitted.
    pub slave_ca_file: Option<PathBuf>,
    /// `insecure` (ours): plain text between nodes and no node identities, like CockroachDB's
    /// `--insecure`; anyone who reaches a port owns the cluster. Default false.
    pub insecure: bool,
}

impl TlsSettings {
    fn from_file(f: &CfgFile) -> Result<Self, ConfigError> {
        let flag =
            |key| -> Result<bool, ConfigError> { Ok(f.get::<CfgBool>(key)?.is_some_and(|b| b.0)) };
        let settings = TlsSettings {
            https: flag("enableHTTPS")?,
            replication_ssl: flag("enableClusterReplicationSSL")?,
            replication_ca_file: f.get("clusterReplicationSSLCAFile")?,
            slave_ca_file: f.get("clusterReplicationSlaveCAFile")?,
            insecure: flag("insecure")?,
        };
        // Asking for TLS and for none at once is a mistake to name, not to guess at.
        if settings.insecure {
            for (key, set) in [
                ("enableClusterReplicationSSL", settings.replication_ssl),
                (
                    "clusterReplicationSSLCAFile",
                    settings.replication_ca_file.is_some(),
                ),
                (
                    "clusterReplicationSlaveCAFile",
                    settings.slave_ca_file.is_some(),
                ),
            ] {
                if set {
                    return Err(f.bad_value(
                        key,
                        "it needs TLS between clusters, which insecure=true turns off",
                    ));
                }
            }
        }
        Ok(settings)
    }
}

/// `controller.cfg`.
#[derive(Clone, Debug, PartialEq)]
pub struct ControllerFile {
    /// `dfsMetaDir`: where each controller keeps its raft log and snapshots
    /// (default: `<home>/<alias>`).
    pub meta_dir: Option<PathBuf>,
    /// `clusterReplicationSlaveNum` (master): how many slave clusters may attach. Default 2.
    pub replication_slave_num: u32,
    /// `clusterReplicationMasterCtl` (slave): a master controller to pull from.
    pub replication_master_ctl: Option<SocketAddr>,
    /// `clusterReplicationQueue` (slave): execution queues; default 4 × data nodes.
    pub replication_queue: Option<u32>,
    /// `slaveReplicationDBScope` (slave): databases to replay; all when unset.
    pub slave_db_scope: Option<Vec<String>>,
    /// `clusterReplicationPullWaitMs` (slave, ours): how long one long-poll pull waits for new
    /// tasks. Default 1000.
    pub replication_pull_wait_ms: u32,
    /// `clusterReplicationPullBatchSize` (slave, ours): most tasks per pull. Default 256.
    pub replication_pull_batch: u32,
    /// `enableHTTPS`, `enableClusterReplicationSSL`, `clusterReplicationSSLCAFile`.
    pub tls: TlsSettings,
    /// `clusterReplicationPublicSites` (master, ours): the addresses slaves reach some of this
    /// cluster's nodes at, when they differ from `cluster.nodes` (NAT, a proxy).
    pub replication_public_sites: Vec<(String, u16, String)>,
    /// `protectedMode` (ours, Redis's name): refuse a non-loopback address while admin has the
    /// default password. Default true.
    pub protected_mode: bool,
}

impl ControllerFile {
    pub const KEYS: &'static [&'static str] = &[
        "mode",
        "localSite",
        "dfsHAMode",
        "dfsMetaDir",
        "clusterReplicationSlaveNum",
        "clusterReplicationMasterCtl",
        "clusterReplicationQueue",
        "slaveReplicationDBScope",
        "clusterReplicationPullWaitMs",
        "clusterReplicationPullBatchSize",
        "enableHTTPS",
        "enableClusterReplicationSSL",
        "clusterReplicationSSLCAFile",
        "clusterReplicationSlaveCAFile",
        "insecure",
        "clusterReplicationPublicSites",
        "protectedMode",
    ];

    pub fn from_file(f: &CfgFile) -> Result<Self, ConfigError> {
        f.check_keys(Self::KEYS)?;
        if let Some(mode) = f.get::<String>("mode")? {
            if mode != "controller" {
                return Err(f.bad_value("mode", "controller.cfg must say mode=controller"));
            }
        }
        if let Some(ha) = f.get::<String>("dfsHAMode")? {
            if !ha.eq_ignore_ascii_case("raft") {
                return Err(f.bad_value("dfsHAMode", "controllers always form a raft group"));
            }
        }
        Ok(ControllerFile {
            meta_dir: f.get("dfsMetaDir")?,
            replication_slave_num: f
                .get::<Positive>("clusterReplicationSlaveNum")?
                .map_or(2, |p| p.0),
            replication_master_ctl: f.get("clusterReplicationMasterCtl")?,
            replication_queue: f.get::<Positive>("clusterReplicationQueue")?.map(|p| p.0),
            slave_db_scope: f.get::<DbScope>("slaveReplicationDBScope")?.map(|s| s.0),
            replication_pull_wait_ms: f
                .get::<Positive>("clusterReplicationPullWaitMs")?
                .map_or(1000, |p| p.0),
            replication_pull_batch: f
                .get::<Positive>("clusterReplicationPullBatchSize")?
                .map_or(256, |p| p.0),
            tls: TlsSettings::from_file(f)?,
            replication_public_sites: f
                .get::<PublicSites>("clusterReplicationPublicSites")?
                .map_or_else(Vec::new, |s| s.0),
            protected_mode: super::protected_mode(f)?,
        })
    }
}

/// `cluster.cfg`: keys of every data node.
#[derive(Clone, Debug, PartialEq)]
pub struct DataNodeFile {
    /// `clusterReplicationMode`: master or slave; unset = replication not configured.
    pub replication_mode: Option<ReplicationMode>,
    /// `clusterReplicationWorkDir` (master): where task data is kept
    /// (default `<home>/<alias>/clusterReplication`).
    pub replication_work_dir: Option<PathBuf>,
    /// `clusterReplicationSyncPersistence` (master). Default false, as in DolphinDB.
    pub replication_sync_persistence: bool,
    /// `clusterReplicationExecutionUsername` (slave). Default admin.
    pub replication_execution_user: String,
    /// `clusterReplicationExecutionPassword` (slave). Default 123456.
    pub replication_execution_password: String,
    /// `clusterReplicationWorkerNum` (slave): replication workers per data node. Default 4.
    pub replication_worker_num: u32,
    /// `clusterReplicationSeedRateMB` (master): MB/s a data node sends slaves' seeds at, at
    /// most; 0 = unlimited (the default).
    pub replication_seed_rate_mb: u64,
    /// `newValuePartitionPolicy`. Default add.
    pub new_value_policy: NewValuePolicy,
    /// `compactionMinFiles`. Default 8.
    pub compaction_min_files: usize,
    /// `snapshotRetentionSeconds`. Default 60.
    pub snapshot_retention: std::time::Duration,
    /// `enableHTTPS`, `enableClusterReplicationSSL`, `clusterReplicationSSLCAFile`.
    pub tls: TlsSettings,
    /// `pgwireSSLOnly`, `authenticationTimeout`, `maxConnections`.
    pub pgwire: super::PgwireSettings,
    /// `maxMemSize`, `memLimitOfQueryResult`, `maxCopyLineSize`.
    pub limits: super::Limits,
    /// `protectedMode`: as in `controller.cfg`.
    pub protected_mode: bool,
}

impl DataNodeFile {
    pub const KEYS: &'static [&'static str] = &[
        "clusterReplicationMode",
        "clusterReplicationWorkDir",
        "clusterReplicationSyncPersistence",
        "clusterReplicationExecutionUsername",
        "clusterReplicationExecutionPassword",
        "clusterReplicationWorkerNum",
        "clusterReplicationSeedRateMB",
        "newValuePartitionPolicy",
        "compactionMinFiles",
        "snapshotRetentionSeconds",
        "enableHTTPS",
        "enableClusterReplicationSSL",
        "clusterReplicationSSLCAFile",
        "clusterReplicationSlaveCAFile",
        "insecure",
        "pgwireSSLOnly",
        "authenticationTimeout",
        "maxConnections",
        "maxMemSize",
        "memLimitOfQueryResult",
        "maxCopyLineSize",
        "protectedMode",
    ];

    pub fn from_file(f: &CfgFile) -> Result<Self, ConfigError> {
        f.check_keys(Self::KEYS)?;
        let compaction_min_files = f.get::<Positive>("compactionMinFiles")?.map_or(8, |p| p.0);
        if compaction_min_files < 2 {
            return Err(f.bad_value("compactionMinFiles", "must be at least 2"));
        }
        Ok(DataNodeFile {
            replication_mode: f.get("clusterReplicationMode")?,
            replication_work_dir: f.get("clusterReplicationWorkDir")?,
            replication_sync_persistence: f
                .get::<CfgBool>("clusterReplicationSyncPersistence")?
                .is_some_and(|b| b.0),
            replication_execution_user: f
                .get("clusterReplicationExecutionUsername")?
                .unwrap_or_else(|| "admin".into()),
            replication_execution_password: f
                .get("clusterReplicationExecutionPassword")?
                .unwrap_or_else(|| "123456".into()),
            replication_worker_num: f
                .get::<Positive>("clusterReplicationWorkerNum")?
                .map_or(4, |p| p.0),
            replication_seed_rate_mb: f.get::<u64>("clusterReplicationSeedRateMB")?.unwrap_or(0),
            new_value_policy: f.get("newValuePartitionPolicy")?.unwrap_or_default(),
            compaction_min_files: compaction_min_files as usize,
            snapshot_retention: std::time::Duration::from_secs(
                f.get::<u64>("snapshotRetentionSeconds")?.unwrap_or(60),
            ),
            tls: TlsSettings::from_file(f)?,
            pgwire: super::PgwireSettings::from_file(f)?,
            limits: super::Limits::from_file(f)?,
            protected_mode: super::protected_mode(f)?,
        })
    }
}

/// A node's role in `cluster.nodes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRole {
    Controller,
    DataNode,
}

/// One line of `cluster.nodes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    pub host: String,
    pub port: u16,
    pub alias: String,
    pub role: NodeRole,
    pub line: usize,
}

/// Parses `cluster.nodes`: an optional `localSite,mode` header, then `host:port:alias,role`.
pub fn parse_nodes(path: &Path, text: &str) -> Result<Vec<NodeEntry>, ConfigError> {
    let syntax = |line: usize, raw: &str| ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        text: raw.to_string(),
    };
    let bad = |line: usize, key: &str, value: &str, reason: &str| ConfigError::BadValue {
        path: path.to_path_buf(),
        line,
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let mut nodes: Vec<NodeEntry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() || content.eq_ignore_ascii_case("localSite,mode") {
            continue;
        }
        let (site, role) = content.split_once(',').ok_or_else(|| syntax(line, raw))?;
        let parts: Vec<&str> = site.trim().split(':').collect();
        let [host, port, alias] = parts.as_slice() else {
            return Err(syntax(line, raw));
        };
        let port: u16 = port.parse().map_err(|_| {
            bad(
                line,
                "localSite",
                site,
                "the port must be a number below 65536",
            )
        })?;
        if alias.is_empty()
            || !alias
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad(
                line,
                "localSite",
                site,
                "an alias is letters, digits, _ or -",
            ));
        }
        let role = match role.trim() {
            "controller" => NodeRole::Controller,
            "datanode" | "data node" => NodeRole::DataNode,
            other => return Err(bad(line, "mode", other, "expected controller or datanode")),
        };
        if let Some(dup) = nodes.iter().find(|n| n.alias == *alias) {
            return Err(bad(
                line,
                "localSite",
                site,
                &format!("alias {alias} is already used on line {}", dup.line),
            ));
        }
        if let Some(dup) = nodes.iter().find(|n| n.host == *host && n.port == port) {
            return Err(bad(
                line,
                "localSite",
                site,
                &format!("{host}:{port} is already used on line {}", dup.line),
            ));
        }
        nodes.push(NodeEntry {
            host: host.to_string(),
            port,
            alias: alias.to_string(),
            role,
            line,
        });
    }
    let controllers = nodes
        .iter()
        .filter(|n| n.role == NodeRole::Controller)
        .count();
    if ![1, 3, 5].contains(&controllers) {
        return Err(bad(
            0,
            "controller",
            &controllers.to_string(),
            "a cluster has 1, 3 or 5 controllers",
        ));
    }
    if !nodes.iter().any(|n| n.role == NodeRole::DataNode) {
        return Err(bad(
            0,
            "datanode",
            "0",
            "a cluster needs at least one data node",
        ));
    }
    Ok(nodes)
}

/// A whole cluster directory.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    pub dir: PathBuf,
    pub controller: ControllerFile,
    pub nodes: Vec<NodeEntry>,
    pub datanode: DataNodeFile,
}

impl ClusterConfig {
    /// Reads `controller.cfg`, `cluster.nodes` and `cluster.cfg` from `dir`.
    pub fn read_dir(dir: &Path) -> Result<Self, ConfigError> {
        let nodes_path = dir.join("cluster.nodes");
        let nodes_text =
            std::fs::read_to_string(&nodes_path).map_err(|source| ConfigError::Read {
                path: nodes_path.clone(),
                source,
            })?;
        let controller = ControllerFile::from_file(&CfgFile::read(&dir.join("controller.cfg"))?)?;
        let datanode = DataNodeFile::from_file(&CfgFile::read(&dir.join("cluster.cfg"))?)?;
        let config = ClusterConfig {
            dir: dir.to_path_buf(),
            controller,
            nodes: parse_nodes(&nodes_path, &nodes_text)?,
            datanode,
        };
        if config.datanode.replication_mode == Some(ReplicationMode::Slave)
            && config.controller.replication_master_ctl.is_none()
        {
            return Err(ConfigError::BadValue {
                path: dir.join("controller.cfg"),
                line: 0,
                key: "clusterReplicationMasterCtl".into(),
                value: String::new(),
                reason: "a slave cluster (clusterReplicationMode=slave) needs the master controller's ip:port".into(),
            });
        }
        if let Some((_, _, alias)) = config
            .controller
            .replication_public_sites
            .iter()
            .find(|(_, _, alias)| !config.nodes.iter().any(|n| n.alias == *alias))
        {
            return Err(ConfigError::BadValue {
                path: dir.join("controller.cfg"),
                line: 0,
                key: "clusterReplicationPublicSites".into(),
                value: alias.clone(),
                reason: "no node of cluster.nodes has this alias".into(),
            });
        }
        Ok(config)
    }

    /// Each node's address as slaves reach it, by its `cluster.nodes` address, for the nodes
    /// `clusterReplicationPublicSites` names.
    pub fn public_addrs(&self) -> HashMap<String, String> {
        self.controller
            .replication_public_sites
            .iter()
            .filter_map(|(host, port, alias)| {
                let node = self.nodes.iter().find(|n| n.alias == *alias)?;
                Some((
                    format!("{}:{}", node.host, node.port),
                    format!("{host}:{port}"),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> ClusterConfig {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config")
            .join(name);
        ClusterConfig::read_dir(&dir).unwrap_or_else(|e| panic!("config/{name}: {e}"))
    }

    #[test]
    fn shipped_master_and_slave_load() {
        let master = example("master");
        assert_eq!(master.controller.replication_slave_num, 1);
        assert_eq!(
            master.datanode.replication_mode,
            Some(ReplicationMode::Master)
        );
        let ports: Vec<(u16, NodeRole)> = master.nodes.iter().map(|n| (n.port, n.role)).collect();
        assert_eq!(
            ports,
            vec![
                (8900, NodeRole::Controller),
                (8902, NodeRole::DataNode),
                (8903, NodeRole::DataNode)
            ]
        );
        let slave = example("slave");
        assert_eq!(
            slave.controller.replication_master_ctl,
            Some("127.0.0.1:8900".parse().unwrap())
        );
        assert_eq!(
            slave.datanode.replication_mode,
            Some(ReplicationMode::Slave)
        );
        // `clusterReplicationQueue`; the controller applies it (`Metadata::slave_queues`).
        assert_eq!(slave.controller.replication_queue, Some(8));
        let ports: Vec<u16> = slave.nodes.iter().map(|n| n.port).collect();
        assert_eq!(ports, vec![9900, 9902, 9903]);
    }

    #[test]
    fn bad_nodes_files_name_the_line() {
        let p = Path::new("cluster.nodes");
        let ok = "localSite,mode\n127.0.0.1:8900:ctl,controller\n127.0.0.1:8902:dn1,datanode\n";
        assert_eq!(parse_nodes(p, ok).unwrap().len(), 2);
        let e = parse_nodes(
            p,
            "127.0.0.1:8900:ctl,controller\n127.0.0.1:x:dn1,datanode\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("cluster.nodes:2:"), "{e}");
        let e = parse_nodes(
            p,
            "127.0.0.1:8900:ctl,controller\n127.0.0.1:8902:ctl,datanode\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("already used on line 1"), "{e}");
        let e = parse_nodes(p, "127.0.0.1:8900:a,controller\n127.0.0.1:8901:b,agent\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected controller or datanode"), "{e}");
        assert!(parse_nodes(p, "127.0.0.1:8902:dn1,datanode\n").is_err());
        assert!(parse_nodes(p, "127.0.0.1:8900:ctl,controller\n").is_err());
    }

    #[test]
    fn bad_keys_and_values_name_file_line_and_key() {
        let f =
            CfgFile::parse(Path::new("cluster.cfg"), "clusterReplicationMode=primary\n").unwrap();
        let e = DataNodeFile::from_file(&f).unwrap_err().to_string();
        assert!(
            e.starts_with("cluster.cfg:1: bad value \"primary\" for clusterReplicationMode"),
            "{e}"
        );
        let f = CfgFile::parse(
            Path::new("controller.cfg"),
            "\nclusterReplicationSlavesNum=1\n",
        )
        .unwrap();
        let e = ControllerFile::from_file(&f).unwrap_err().to_string();
        assert_eq!(
            e,
            "controller.cfg:2: unknown key \"clusterReplicationSlavesNum\""
        );
        let f = CfgFile::parse(Path::new("controller.cfg"), "clusterReplicationQueue=0\n").unwrap();
        assert!(ControllerFile::from_file(&f).is_err());
        let f =
            CfgFile::parse(Path::new("controller.cfg"), "slaveReplicationDBScope=db1\n").unwrap();
        assert!(ControllerFile::from_file(&f).is_err());
        let ca = "clusterReplicationSSLCAFile=ca.pem\nclusterReplicationSlaveCAFile=s.pem\n";
        let f = CfgFile::parse(Path::new("cluster.cfg"), ca).unwrap();
        let tls = DataNodeFile::from_file(&f).unwrap().tls;
        assert_eq!(
            tls.replication_ca_file.as_deref(),
            Some(Path::new("ca.pem"))
        );
        assert_eq!(tls.slave_ca_file.as_deref(), Some(Path::new("s.pem")));
        assert!(!tls.insecure && !tls.https);
        // insecure=true with keys that need TLS is named, not guessed at.
        let both = format!("{ca}insecure=true\n");
        let f = CfgFile::parse(Path::new("cluster.cfg"), &both).unwrap();
        let e = DataNodeFile::from_file(&f).unwrap_err().to_string();
        assert!(
            e.contains("clusterReplicationSSLCAFile") && e.contains("insecure=true"),
            "{e}"
        );
    }

    #[test]
    fn public_sites_map_cluster_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/master");
        for f in ["cluster.nodes", "cluster.cfg", "controller.cfg"] {
            std::fs::copy(shipped.join(f), dir.path().join(f)).unwrap();
        }
        let with_sites = |sites: &str| {
            let cfg = std::fs::read_to_string(shipped.join("controller.cfg")).unwrap();
            let cfg = format!("{cfg}\nclusterReplicationPublicSites={sites}\n");
            std::fs::write(dir.path().join("controller.cfg"), cfg).unwrap();
            ClusterConfig::read_dir(dir.path()).map_err(|e| e.to_string())
        };
        let config = with_sites("10.0.0.1:7000:master_dn1, 10.0.0.1:7001:master_ctl").unwrap();
        let map = config.public_addrs();
        assert_eq!(map.len(), 2);
        assert_eq!(map["127.0.0.1:8902"], "10.0.0.1:7000");
        assert_eq!(map["127.0.0.1:8900"], "10.0.0.1:7001");
        let e = with_sites("10.0.0.1:7000:nobody").unwrap_err();
        assert!(e.contains("no node of cluster.nodes has this alias"), "{e}");
        for bad in [
            "10.0.0.1:master_dn1",
            "10.0.0.1:x:master_dn1",
            ":7000:master_dn1",
        ] {
            let e = with_sites(bad).unwrap_err();
            assert!(e.contains("host:port:alias"), "{bad}: {e}");
        }
    }
}
