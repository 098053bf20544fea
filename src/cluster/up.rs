//! `porpoise up DIR`: starts every node of a cluster directory on this machine as child
//! processes of this one (`porpoise controller ...` and `porpoise datanode ...`), prints where
//! to connect, and stops them all on Ctrl-C or when one of them exits. The children also stop
//! by themselves if this process is killed (their standard input, a pipe from here, closes).

use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, Command};

use super::{addr_of, NodeError};
use crate::config::cluster::{ClusterConfig, NodeRole};
use crate::rpc::identity::{CertificateAuthority, CA_CERT, NODE_CERT};

/// Runs the cluster until `shutdown` resolves or a node exits; `insecure` starts every node
/// `--insecure`.
pub async fn up(
    config: &ClusterConfig,
    home: &Path,
    insecure: bool,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let exe = std::env::current_exe().map_err(|source| NodeError::Spawn {
        alias: "porpoise".into(),
        source,
    })?;
    // A node without a certificate makes one as it starts, signed by the home's CA: made here
    // first, so that every node of this home is of one cluster. Nodes given certificates
    // (`porpoise cert create-node`) need none.
    let unsigned = config
        .nodes
        .iter()
        .any(|n| !home.join(&n.alias).join("certs").join(NODE_CERT).exists());
    if unsigned {
        let ca = CertificateAuthority::load_or_create_in(&home.join("ca"))?;
        println!(
            "cluster {} (CA certificate: {})",
            ca.cluster(),
            home.join("ca").join(CA_CERT).display()
        );
    }
    let mut children: Vec<(String, Child)> = Vec::new();
    // The write ends of the children's standard input, held open until they should stop
    // (`Child::wait` would close them).
    let mut stdins = Vec::new();
    // Controllers first: data nodes wait for them anyway, but the logs read better.
    let mut nodes: Vec<_> = config.nodes.iter().collect();
    nodes.sort_by_key(|n| n.role != NodeRole::Controller);
    for n in nodes {
        let role = match n.role {
            NodeRole::Controller => "controller",
            NodeRole::DataNode => "datanode",
        };
        let mut command = Command::new(&exe);
        command.arg(role);
        if insecure {
            command.arg("--insecure");
        }
        let child = command
            .arg(&config.dir)
            .arg("--alias")
            .arg(&n.alias)
            .arg("--home")
            .arg(home)
            // Each node stops when this process goes away, however it ends: the pipe closes.
            .arg("--stop-on-stdin-eof")
            .stdin(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| NodeError::Spawn {
                alias: n.alias.clone(),
                source,
            })?;
        println!("started {role} {} at {}", n.alias, addr_of(n));
        let mut child = child;
        stdins.push(child.stdin.take());
        children.push((n.alias.clone(), child));
    }
    for n in config.nodes.iter().filter(|n| n.role == NodeRole::DataNode) {
        println!(
            "psql \"postgres://admin:123456@{}:{}/porpoise\"   # {}",
            n.host, n.port, n.alias
        );
    }
    let first_exit = async {
        let waits = children.iter_mut().map(|(alias, c)| {
            let alias = alias.clone();
            Box::pin(async move { (alias, c.wait().await) })
        });
        futures::future::select_all(waits).await.0
    };
    let result = tokio::select! {
        _ = shutdown => Ok(()),
        (alias, status) = first_exit => Err(NodeError::Exited {
            alias,
            status: match status {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            },
        }),
    };
    drop(stdins);
    for (alias, child) in &mut children {
        if let Some(pid) = child.id() {
            // SIGTERM lets each node stop cleanly; kill_on_drop covers the rest.
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await;
        tracing::info!(%alias, "stopped");
    }
    result
}
