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
    },
    /// One controller of a cluster directory.
    Controller {
        dir: PathBuf,
        /// The controller's alias in `cluster.nodes`.
        #[arg(long)]
        alias: String,
        #[arg(long)]
        home: Option<PathBuf>,
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
        #[arg(long, hide = true)]
        stop_on_stdin_eof: bool,
    },
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
                tls: file.enable_https,
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
        Command::Up { dir, home } => {
            let config = ClusterConfig::read_dir(&dir)?;
            let home = home.unwrap_or_else(|| PathBuf::from("./porpoise-data"));
            porpoise::cluster::up::up(&config, &home, shutdown_signal()).await?;
            Ok(())
        }
        Command::Controller {
            dir,
            alias,
            home,
            stop_on_stdin_eof,
        } => {
            let options = node_options(&dir, alias, home)?;
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
            stop_on_stdin_eof,
        } => {
            let options = node_options(&dir, alias, home)?;
            let node = DataNodeProcess::start(options.clone()).await?;
            println!(
                "porpoise datanode {} listening on {}",
                options.alias, node.addr
            );
            node.run(node_shutdown(stop_on_stdin_eof)).await?;
            Ok(())
        }
    }
}

/// The options of one node of the cluster directory `dir`.
fn node_options(
    dir: &std::path::Path,
    alias: String,
    home: Option<PathBuf>,
) -> Result<NodeOptions, porpoise::config::ConfigError> {
    Ok(NodeOptions {
        config: ClusterConfig::read_dir(dir)?,
        alias,
        home: home.unwrap_or_else(|| PathBuf::from("./porpoise-data")),
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
