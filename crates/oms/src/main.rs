//! `oms`: one binary for every crypto-oms service.

mod accounts;
mod bootstrap;
mod config;
mod loadgen;
mod logging;
mod ports;
mod readiness;
mod serve;
mod static_files;

use anyhow::Result;

/// glibc's allocator spent about a third of the server's CPU under load (fragmentation of the
/// many short-lived event buffers); mimalloc is made for this pattern.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "oms",
    version,
    about = "crypto-oms: a crypto order management system"
)]
struct Cli {
    /// TOML configuration file (environment variables `OMS_*` override it).
    #[arg(long, short, global = true, env = "OMS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the whole OMS in one process: API, risk, venue, processor, market data.
    Serve {
        /// Data directory (overrides `server.dataDir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Listen address (overrides `server.listen`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Do not run the simulated demo market.
        #[arg(long)]
        no_demo: bool,
    },
    /// Creates and lists accounts, issues API keys, credits deposits.
    Accounts {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[command(subcommand)]
        command: accounts::AccountsCommand,
    },
    /// Drives `POST /api/orders` open-loop at a fixed rate and reports latency.
    Loadgen(loadgen::LoadgenArgs),
    /// Runs only the order ingestion API (distributed mode).
    Ingestion(ServiceArgs),
    /// Runs only the risk engine (distributed mode).
    Risk(ServiceArgs),
    /// Runs only the matching venue (distributed mode).
    Venue(ServiceArgs),
    /// Runs only the order processor (distributed mode; run several in one consumer group).
    Processor(ServiceArgs),
    /// Runs only market data: REST and WebSocket (distributed mode).
    Marketdata(ServiceArgs),
    /// Applies the order store's migrations (PostgreSQL) and exits.
    Migrate,
}

#[derive(clap::Args)]
struct ServiceArgs {
    /// Listen address for this service's HTTP (health, readiness, metrics, and its API).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Data directory, for any embedded adapter in use.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn service(
    mut config: config::Config,
    args: ServiceArgs,
    role: serve::Role,
    runtime: &tokio::runtime::Runtime,
) -> Result<()> {
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    if let Some(d) = args.data_dir {
        config.server.data_dir = d;
    }
    logging::init(&config.server)?;
    runtime.block_on(serve::run(config, &[role]))
}

/// Turns transparent huge pages off for this process, as Redis and MongoDB advise: the thread
/// that first touches a 2 MiB page waits until the kernel has cleared all of it, which showed
/// as stalls of a hundred milliseconds and more when load ramped up on a fresh process.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: this prctl takes plain integers and changes only how this process's memory is
    // backed; its failure (an old kernel) changes nothing else.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> Result<()> {
    disable_transparent_huge_pages();
    let cli = Cli::parse();
    let mut config = config::Config::load(cli.config.as_deref())?;
    // The load generator runs on one thread: it shares the machine with the server it
    // measures, and one thread drives its connections without waking another.
    let runtime = match cli.command {
        Command::Loadgen(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()?;
    match cli.command {
        Command::Serve {
            data_dir,
            listen,
            no_demo,
        } => {
            if let Some(d) = data_dir {
                config.server.data_dir = d;
            }
            if let Some(l) = listen {
                config.server.listen = l;
            }
            if no_demo {
                config.demo.enabled = false;
            }
            logging::init(&config.server)?;
            runtime.block_on(serve::run(config, &serve::Role::ALL))
        }
        Command::Ingestion(a) => service(config, a, serve::Role::Ingestion, &runtime),
        Command::Risk(a) => service(config, a, serve::Role::Risk, &runtime),
        Command::Venue(a) => service(config, a, serve::Role::Venue, &runtime),
        Command::Processor(a) => service(config, a, serve::Role::Processor, &runtime),
        Command::Marketdata(a) => service(config, a, serve::Role::MarketData, &runtime),
        Command::Migrate => runtime.block_on(async {
            // Opening the ports runs the store's migrations and creates the topics.
            ports::open(&config).await?;
            println!("order store migrated; topics present");
            Ok(())
        }),
        Command::Accounts { data_dir, command } => {
            if let Some(d) = data_dir {
                config.server.data_dir = d;
            }
            runtime.block_on(accounts::run(config, command))
        }
        Command::Loadgen(args) => runtime.block_on(loadgen::run(args)),
    }
}
