//! `porpoise playground`: the master and slave clusters of `config/master` and
//! `config/slave` (embedded in the binary, so it runs from anywhere) started together with
//! [`super::up::up`], in homes under one directory, with the psql command of each side and a
//! three-line replication demo printed first. Ctrl-C (or SIGTERM) stops both clusters; if a
//! node of either exits, both stop.
//!
//! Layout of the directory: `config/master/`, `config/slave/` (the cluster directories) and
//! `master-data/`, `slave-data/` (the homes) — the same relative places as the repository's
//! `config/` and the README's `--home ./master-data`, so the CA paths of the configuration
//! (`../../slave-data/ca/ca.crt`) need no change. Both CAs are made before any node starts,
//! since each cluster's configuration names the other's.

use std::path::{Path, PathBuf};

use super::up::up;
use super::NodeError;
use crate::config::cluster::ClusterConfig;
use crate::rpc::identity::CertificateAuthority;

/// The example clusters' files: `(cluster, file, contents)`.
const FILES: &[(&str, &str, &str)] = &[
    (
        "master",
        "cluster.cfg",
        include_str!("../../config/master/cluster.cfg"),
    ),
    (
        "master",
        "cluster.nodes",
        include_str!("../../config/master/cluster.nodes"),
    ),
    (
        "master",
        "controller.cfg",
        include_str!("../../config/master/controller.cfg"),
    ),
    (
        "slave",
        "cluster.cfg",
        include_str!("../../config/slave/cluster.cfg"),
    ),
    (
        "slave",
        "cluster.nodes",
        include_str!("../../config/slave/cluster.nodes"),
    ),
    (
        "slave",
        "controller.cfg",
        include_str!("../../config/slave/controller.cfg"),
    ),
];

/// The ports of the example clusters, in the order `--base-port` renumbers them.
const PORTS: [u16; 6] = [8900, 8902, 8903, 9900, 9902, 9903];

/// Writes the two cluster directories into `dir/config/` (ports renumbered from `base_port`
/// if given) and returns `(master, slave)`.
pub fn write_config(dir: &Path, base_port: Option<u16>) -> Result<(PathBuf, PathBuf), NodeError> {
    let io = |source: std::io::Error| NodeError::Spawn {
        alias: "playground".into(),
        source,
    };
    for (cluster, file, contents) in FILES {
        let cluster_dir = dir.join("config").join(cluster);
        std::fs::create_dir_all(&cluster_dir).map_err(io)?;
        let mut text = contents.to_string();
        if let Some(base) = base_port {
            for (i, port) in PORTS.iter().enumerate() {
                text = text.replace(
                    &format!("127.0.0.1:{port}"),
                    &format!("127.0.0.1:{}", base + i as u16),
                );
            }
        }
        std::fs::write(cluster_dir.join(file), text).map_err(io)?;
    }
    Ok((dir.join("config/master"), dir.join("config/slave")))
}

/// The psql command of the first data node of `config`.
fn psql(config: &ClusterConfig) -> String {
    let node = config
        .nodes
        .iter()
        .find(|n| n.role == crate::config::cluster::NodeRole::DataNode);
    match node {
        Some(n) => format!(
            "psql \"postgres://admin:123456@{}:{}/porpoise\"",
            n.host, n.port
        ),
        None => "psql".into(),
    }
}

/// Runs both clusters in `dir` until `shutdown` resolves or a node exits.
pub async fn playground(
    dir: &Path,
    base_port: Option<u16>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let (master_dir, slave_dir) = write_config(dir, base_port)?;
    let master = ClusterConfig::read_dir(&master_dir)?;
    let slave = ClusterConfig::read_dir(&slave_dir)?;
    let (master_home, slave_home) = (dir.join("master-data"), dir.join("slave-data"));
    CertificateAuthority::load_or_create_in(&master_home.join("ca"))?;
    CertificateAuthority::load_or_create_in(&slave_home.join("ca"))?;
    let (on_master, on_slave) = (psql(&master), psql(&slave));
    println!(
        "porpoise playground: a master and a slave cluster in {}",
        dir.display()
    );
    println!("  master: {on_master}");
    println!("  slave:  {on_slave}");
    println!("Replicate a database (master, master, then slave):");
    println!(
        "  {on_master} -c 'create database \"dfs://demo\" partitioned by VALUE(1..10)' -c \"select setDatabaseForClusterReplication('dfs://demo', true)\" -c 'create table \"dfs://demo\".\"t\"(id INT, v DOUBLE) partitioned by id'"
    );
    println!("  {on_master} -c 'insert into \"dfs://demo\".\"t\" values (1, 1.5), (2, 2.5)'");
    println!("  {on_slave} -c 'select * from \"dfs://demo\".\"t\" order by id'");
    println!("Ctrl-C stops both clusters.");

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let run = |config: ClusterConfig, home: PathBuf, rx| {
        let stop = &stop;
        async move {
            let result = up(&config, &home, false, wait(rx)).await;
            // Either cluster ending ends the other.
            stop.send_replace(true);
            result
        }
    };
    let signal = {
        let mut rx = stopped.clone();
        let stop = &stop;
        async move {
            tokio::select! {
                _ = shutdown => {}
                _ = rx.wait_for(|s| *s) => {}
            }
            stop.send_replace(true);
        }
    };
    let (m, s, ()) = tokio::join!(
        run(master, master_home, stopped.clone()),
        run(slave, slave_home, stopped.clone()),
        signal
    );
    m.and(s)
}
