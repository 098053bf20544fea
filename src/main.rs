//! The `porpoise` command: one subcommand per node role.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use porpoise::datanode::DataNodeOptions;
use porpoise::standalone::{Standalone, StandaloneOptions};

#[derive(Parser)]
#[command(name = "porpoise", version, about = "A partitioned, columnar, replicated SQL database")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A controller and one data node in one process, serving PostgreSQL clients.
    Standalone {
        /// Where data lives.
        #[arg(long, default_value = "./porpoise-data")]
        home: PathBuf,
        /// pgwire port (0 picks a free one).
        #[arg(long, default_value_t = 8902)]
        port: u16,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// What to do with rows whose VALUE partition does not exist yet: add, fail or skip.
        #[arg(long = "new-value-partition-policy", default_value = "add")]
        new_value_policy: String,
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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Standalone {
            home,
            port,
            host,
            new_value_policy,
        } => {
            let policy = match new_value_policy.as_str() {
                "add" => porpoise::catalog::NewValuePolicy::Add,
                "fail" => porpoise::catalog::NewValuePolicy::Fail,
                "skip" => porpoise::catalog::NewValuePolicy::Skip,
                other => return Err(format!("newValuePartitionPolicy must be add, fail or skip, not {other:?}").into()),
            };
            let options = StandaloneOptions {
                home: home.clone(),
                listen: SocketAddr::new(host, port),
                datanode: DataNodeOptions {
                    new_value_policy: policy,
                    ..DataNodeOptions::default()
                },
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
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
