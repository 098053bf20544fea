//! The `porpoise` command: one subcommand per node role.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use porpoise::catalog::NewValuePolicy;
use porpoise::cluster::controller::ControllerNode;
use porpoise::cluster::datanode::DataNodeProcess;
use porpoise::cluster::NodeOptions;
use porpoise::config::cluster::ClusterConfig;
use porpoise::config::StandaloneFile;
use porpoise::datanode::DataNodeOptions;
use porpoise::standalone::{Standalone, StandaloneOptions};

#[derive(Parser)]
#[command(
    name = "porpoise",
    version,
    about = "A partitioned, columnar, replicated SQL database"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A controller and one data node in one process, serving PostgreSQL clients.
    Standalone {
        /// A directory holding `porpoise.cfg` (e.g. `config/standalone`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where data lives [default: ./porpoise-data].
        #[arg(long)]
        home: Option<PathBuf>,
        /// pgwire port; 0 picks a free one [default: 8902].
        #[arg(long)]
        port: Option<u16>,
        /// Address to listen on [default: 127.0.0.1].
        #[arg(long)]
        host: Option<std::net::IpAddr>,
        /// Rows whose VALUE partition does not exist yet: add, fail or skip [default: add].
        #[arg(long = "new-value-partition-policy")]
        new_value_policy: Option<NewValuePolicy>,
    },
    /// Every node of a cluster directory (`controller.cfg`, `cluster.nodes`, `cluster.cfg`)
    /// as child processes; Ctrl-C stops them all.
    Up {
        /// The cluster directory, e.g. `config/master`.
        dir: PathBuf,
        /// Where the nodes keep their files (`<home>/<alias>/`) [default: ./porpoise-data].
        #[arg(long)]
        home: Option<PathBuf>,
        /// Plain text between nodes, calls taken from anyone (a trusted network only).
        #[arg(long)]
        insecure: bool,
    },
    /// The master and slave clusters of `config/master` and `config/slave` together, with
    /// the psql command of each and a replication demo; Ctrl-C stops both.
    Playground {
        /// Where the clusters' directories and homes go [default: a new temporary directory,
        /// removed when the playground stops].
        #[arg(long)]
        home: Option<PathBuf>,
        /// Renumber the six ports (8900, 8902, 8903 master; 9900, 9902, 9903 slave) from this
        /// one up (tests use it).
        #[arg(long, hide = true)]
        base_port: Option<u16>,
    },
    /// One controller of a cluster directory.
    Controller {
        dir: PathBuf,
        /// The controller's alias in `cluster.nodes`.
        #[arg(long)]
        alias: String,
        #[arg(long)]
        home: Option<PathBuf>,
        /// Plain text between nodes, calls taken from anyone (a trusted network only).
        #[arg(long)]
        insecure: bool,
        /// Stop when standard input closes (`porpoise up` and tests use it, so nodes never
        /// outlive the process that started them, even if it is killed).
        #[arg(long, hide = true)]
        stop_on_stdin_eof: bool,
    },
    /// One data node of a cluster directory.
    Datanode {
        dir: PathBuf,
        /// The data node's alias in `cluster.nodes`.
        #[arg(long)]
        alias: String,
        #[arg(long)]
        home: Option<PathBuf>,
        /// Plain text between nodes, calls taken from anyone (a trusted network only).
        #[arg(long)]
        insecure: bool,
        #[arg(long, hide = true)]
        stop_on_stdin_eof: bool,
    },
    /// Certificates: a cluster's CA, its nodes' and its clients' (CockroachDB's model).
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
}

#[derive(Subcommand)]
enum CertCommand {
    /// A new cluster CA: `<certs-dir>/ca.crt` and its key (keep the key apart from the nodes).
    #[command(name = "create-ca")]
    Ca {
        /// Where `ca.crt` goes.
        #[arg(long)]
        certs_dir: PathBuf,
        /// Where the CA's key goes.
        #[arg(long)]
        ca_key: PathBuf,
        /// The cluster's id (letters, digits, _ or -) [default: random].
        #[arg(long)]
        cluster_id: Option<String>,
    },
    /// A node's certificate: `<certs-dir>/node.crt`, `node.key` and a copy of `ca.crt`, for
    /// the node `alias` reached at `hosts` (names or addresses; localhost is always added).
    #[command(name = "create-node")]
    Node {
        #[command(flatten)]
        signer: Signer,
        /// The node's alias in `cluster.nodes`.
        #[arg(long)]
        alias: String,
        hosts: Vec<String>,
    },
    /// A client certificate for SQL user `user`: `<certs-dir>/client.<user>.crt` and `.key`.
    #[command(name = "create-client")]
    Client {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        user: String,
    },
}

/// Where `create-node` and `create-client` write, and the CA that signs.
#[derive(clap::Args)]
struct Signer {
    /// Where the certificate goes (a node's: `<home>/<alias>/certs`).
    #[arg(long)]
    certs_dir: PathBuf,
    /// The CA certificate (`ca.crt` made by create-ca).
    #[arg(long)]
    ca_cert: PathBuf,
    #[arg(long)]
    ca_key: PathBuf,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(porpoise::query::parse_budget::THREAD_STACK_SIZE)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("porpoise: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("porpoise: {e}");
            // A node that refuses to serve may still be reading its standard input on a
            // blocking thread (`--stop-on-stdin-eof`): do not wait for it to exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Standalone {
            config,
            home,
            port,
            host,
            new_value_policy,
        } => {
            let file = match &config {
                Some(dir) => StandaloneFile::read_dir(dir)?,
                None => StandaloneFile::default(),
            };
            let home = home
                .or(file.home)
                .unwrap_or_else(|| PathBuf::from("./porpoise-data"));
            let mut datanode = DataNodeOptions {
                replication_dir: home.join("clusterReplication"),
                limits: file.limits,
                ..DataNodeOptions::default()
            };
            if let Some(p) = new_value_policy.or(file.new_value_policy) {
                datanode.new_value_policy = p;
            }
            if let Some(n) = file.compaction_min_files {
                datanode.compaction_min_files = n;
            }
            if let Some(d) = file.snapshot_retention {
                datanode.snapshot_retention = d;
            }
            let listen = SocketAddr::new(
                host.or(file.listen_host)
                    .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
                port.or(file.port).unwrap_or(8902),
            );
            let options = StandaloneOptions {
                home: home.clone(),
                listen,
                datanode,
                pgwire: file.pgwire,
                protected_mode: file.protected_mode,
            };
            let server = Standalone::start(options).await?;
            // Tests and scripts read this line to find the port.
            println!(
                "porpoise standalone listening on {} (home {})",
                server.addr,
                home.display()
            );
            server.run(shutdown_signal()).await?;
            Ok(())
        }
        Command::Up {
            dir,
            home,
            insecure,
        } => {
            let config = ClusterConfig::read_dir(&dir)?;
            let home = home.unwrap_or_else(|| PathBuf::from("./porpoise-data"));
            porpoise::cluster::up::up(&config, &home, insecure, shutdown_signal()).await?;
            Ok(())
        }
        Command::Playground { home, base_port } => {
            let (dir, temporary) = match home {
                Some(h) => (h, false),
                None => (
                    std::env::temp_dir()
                        .join(format!("porpoise-playground-{}", std::process::id())),
                    true,
                ),
            };
            let result =
                porpoise::cluster::playground::playground(&dir, base_port, shutdown_signal()).await;
            if temporary {
                let _ = std::fs::remove_dir_all(&dir);
            }
            result?;
            Ok(())
        }
        Command::Controller {
            dir,
            alias,
            home,
            insecure,
            stop_on_stdin_eof,
        } => {
            let options = node_options(&dir, alias, home, insecure)?;
            let node = ControllerNode::start(options.clone()).await?;
            println!(
                "porpoise controller {} listening on {}",
                options.alias, node.addr
            );
            node.run(node_shutdown(stop_on_stdin_eof)).await?;
            Ok(())
        }
        Command::Datanode {
            dir,
            alias,
            home,
            insecure,
            stop_on_stdin_eof,
        } => {
            let options = node_options(&dir, alias, home, insecure)?;
            let node = DataNodeProcess::start(options.clone()).await?;
            println!(
                "porpoise datanode {} listening on {}",
                options.alias, node.addr
            );
            node.run(node_shutdown(stop_on_stdin_eof)).await?;
            Ok(())
        }
        Command::Cert { command } => cert(command),
    }
}

/// `porpoise cert ...`: writes each file whole (keys readable by their owner only) and
/// prints what it wrote.
fn cert(command: CertCommand) -> Result<(), Box<dyn std::error::Error>> {
    use porpoise::rpc::identity::{write_new, CertificateAuthority, Subject, CA_CERT};
    let create_dir = |dir: &std::path::Path| {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
    };
    match command {
        CertCommand::Ca {
            certs_dir,
            ca_key,
            cluster_id,
        } => {
            let cert = certs_dir.join(CA_CERT);
            for path in [&cert, &ca_key] {
                if path.exists() {
                    return Err(format!("{} exists: not replacing it", path.display()).into());
                }
            }
            create_dir(&certs_dir)?;
            if let Some(dir) = ca_key.parent().filter(|d| !d.as_os_str().is_empty()) {
                create_dir(dir)?;
            }
            let ca = CertificateAuthority::create(cluster_id.as_deref())?;
            ca.write(&cert, &ca_key)?;
            println!(
                "cluster {}: wrote {} and {}",
                ca.cluster(),
                cert.display(),
                ca_key.display()
            );
        }
        CertCommand::Node {
            signer,
            alias,
            hosts,
        } => {
            let ca = CertificateAuthority::load(&signer.ca_cert, &signer.ca_key)?;
            let certs_dir = signer.certs_dir;
            ca.write_node(&certs_dir, &alias, &hosts)?;
            println!(
                "node {alias} of cluster {}: wrote ca.crt, node.crt and node.key in {}",
                ca.cluster(),
                certs_dir.display()
            );
        }
        CertCommand::Client { signer, user } => {
            let ca = CertificateAuthority::load(&signer.ca_cert, &signer.ca_key)?;
            let certs_dir = signer.certs_dir;
            let (cert, key) = ca.issue(Subject::User(user.clone()), &[])?;
            create_dir(&certs_dir)?;
            let (cert_path, key_path) = (
                certs_dir.join(format!("client.{user}.crt")),
                certs_dir.join(format!("client.{user}.key")),
            );
            write_new(&key_path, key.as_bytes(), 0o600)?;
            write_new(&cert_path, cert.as_bytes(), 0o644)?;
            println!(
                "user {user} of cluster {}: wrote {} and {}",
                ca.cluster(),
                cert_path.display(),
                key_path.display()
            );
        }
    }
    Ok(())
}

/// The options of one node of the cluster directory `dir`.
fn node_options(
    dir: &std::path::Path,
    alias: String,
    home: Option<PathBuf>,
    insecure: bool,
) -> Result<NodeOptions, porpoise::config::ConfigError> {
    Ok(NodeOptions {
        config: ClusterConfig::read_dir(dir)?,
        alias,
        home: home.unwrap_or_else(|| PathBuf::from("./porpoise-data")),
        insecure,
    })
}

/// A node stops on Ctrl-C or SIGTERM, and, if asked, when its standard input closes.
async fn node_shutdown(stop_on_stdin_eof: bool) {
    if !stop_on_stdin_eof {
        return shutdown_signal().await;
    }
    let eof = async {
        use tokio::io::AsyncReadExt;
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = eof => tracing::info!("standard input closed: stopping"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
