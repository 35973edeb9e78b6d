//! `oms serve`: every service in one process, on the embedded adapters.

use crate::bootstrap;
use crate::config::Config;
use crate::readiness::ServeReadiness;
use anyhow::{Context, Result};
use oms_ports::PortError;
use oms_services::api::{self, ApiConfig, ApiState};
use oms_services::codec::topics;
use oms_services::demo::{run_demo_market, DemoConfig};
use oms_services::ingestion::OrderIdGenerator;
use oms_services::marketdata::{
    marketdata_router, run_marketdata_consumer, run_processor_updates, ApiAccounts, MarketData,
    MarketDataConfig,
};
use oms_services::pipeline::metrics::PipelineMetrics;
use oms_services::pipeline::processor::ProcessorStage;
use oms_services::pipeline::reference::References;
use oms_services::pipeline::risk::RiskStage;
use oms_services::pipeline::venue::VenueStage;
use oms_services::pipeline::{processor, risk, venue, Shutdown};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub async fn run(config: Config) -> Result<()> {
    let ports = crate::ports::open(&config).await?;
    let boot = bootstrap::run(&config, &ports.log, &ports.store).await?;
    if let Some((account, key)) = &boot.new_demo_key {
        // Printed once, on the first start only: the key is stored hashed.
        println!(
            "\n  Demo account {account} created. Its API key (shown once, keep it):\n\n    {key}\n"
        );
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let metrics = Arc::new(PipelineMetrics::default());
    let references = References::default();
    let (updates, _) = broadcast::channel(4096);

    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    {
        let (log, store, cfg, refs) = (
            ports.log.clone(),
            ports.store.clone(),
            config.clone(),
            references.clone(),
        );
        let fee = boot.fee_account;
        tasks.push(supervise("risk", stop_rx.clone(), move |s| {
            RiskStage {
                log: log.clone(),
                store: store.clone(),
                instruments: cfg.instruments.clone(),
                config: cfg.risk.clone(),
                fee_account: fee,
                references: refs.clone(),
                snapshot_every: cfg.pipeline.snapshot_every,
            }
            .run(s)
        }));
    }
    {
        let (log, store, cfg) = (ports.log.clone(), ports.store.clone(), config.clone());
        let fee = boot.fee_account;
        tasks.push(supervise("venue", stop_rx.clone(), move |s| {
            VenueStage {
                log: log.clone(),
                store: store.clone(),
                instruments: cfg.instruments.clone(),
                fee_account: fee,
                snapshot_every: cfg.pipeline.snapshot_every,
                tick_every: Duration::from_millis(cfg.pipeline.tick_millis.max(10)),
            }
            .run(s)
        }));
    }
    {
        let (log, store, cfg, m, up) = (
            ports.log.clone(),
            ports.store.clone(),
            config.clone(),
            metrics.clone(),
            updates.clone(),
        );
        tasks.push(supervise("processor", stop_rx.clone(), move |s| {
            ProcessorStage {
                log: log.clone(),
                store: store.clone(),
                snapshot_every: cfg.pipeline.snapshot_every,
                metrics: m.clone(),
                updates: up.clone(),
            }
            .run(s)
        }));
    }
    tasks.push(tokio::spawn(
        references
            .clone()
            .follow(ports.log.clone(), stop_rx.clone()),
    ));
    tasks.push(tokio::spawn(metrics.clone().watch_lag(
        ports.log.clone(),
        vec![
            (risk::GROUP, topics::ORDERS),
            (venue::GROUP, topics::VENUE),
            (processor::GROUP, topics::ORDERS),
        ],
        Duration::from_secs(2),
        stop_rx.clone(),
    )));

    let api_config = ApiConfig {
        idempotency_ttl: Duration::from_secs(config.idempotency.ttl_secs),
        secure_cookies: config.server.secure_cookies,
        orders_topic: topics::ORDERS.to_string(),
        partitions: config.log.orders_partitions,
        session_secret: session_secret(&config)?,
        ..ApiConfig::default()
    };
    let ids =
        Arc::new(OrderIdGenerator::new(config.server.instance_id).context("server.instanceId")?);
    let state = ApiState::new(
        ports.log.clone(),
        ports.store.clone(),
        ports.idempotency.clone(),
        config.instruments.clone(),
        api_config,
        ids,
    )
    .with_readiness(Arc::new(ServeReadiness {
        metrics: metrics.clone(),
    }))
    .with_metrics_source(metrics.clone());
    let resolver = Arc::new(ApiAccounts(state.clone()));
    let md_config = MarketDataConfig {
        instruments: config.instruments.clone(),
        ..MarketDataConfig::default()
    };
    let md = MarketData::new(md_config, ports.store.clone(), resolver);
    tasks.push(supervise("marketdata", stop_rx.clone(), {
        let (md, log) = (md.clone(), ports.log.clone());
        move |s| {
            let (md, log) = (md.clone(), log.clone());
            async move {
                run_marketdata_consumer(md, log, s)
                    .await
                    .map_err(|e| PortError::Other(e.to_string()))
            }
        }
    }));
    // In one process the private channel follows the processor's persisted updates directly.
    tasks.push(tokio::spawn(run_processor_updates(
        md.clone(),
        updates.subscribe(),
        stop_rx.clone(),
    )));
    if config.demo.enabled {
        let mut demo = DemoConfig::default();
        demo.settings.seed = config.demo.seed;
        let (state, md, stop) = (state.clone(), md.clone(), stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = run_demo_market(demo, state, Some(md), stop).await {
                tracing::error!(error = %e, "demo market stopped");
            }
        }));
    }
    let extra = marketdata_router(md).merge(crate::static_files::routes(&config.server.static_dir));
    let app = api::router_with(state, extra);

    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    tracing::info!(address = %config.server.listen, data_dir = %config.server.data_dir.display(), "crypto-oms serving");
    println!("crypto-oms is listening on http://{}", config.server.listen);

    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("HTTP drained; stopping the pipeline");
    let _ = stop_tx.send(true);
    let all = futures_join(tasks);
    if tokio::time::timeout(grace, all).await.is_err() {
        tracing::warn!(
            "pipeline did not stop within {grace:?}; exiting anyway (the log is durable)"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

/// Runs a stage until shutdown, restarting it after an error: it rebuilds its state from its
/// snapshot and the log, so a restart is always safe.
fn supervise<F, Fut>(name: &'static str, shutdown: Shutdown, make: F) -> JoinHandle<()>
where
    F: Fn(Shutdown) -> Fut + Send + 'static,
    Fut: Future<Output = oms_ports::PortResult<()>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            match make(shutdown.clone()).await {
                Ok(()) => return,
                Err(e) if *shutdown.borrow() => {
                    tracing::info!(stage = name, error = %e, "stage stopped during shutdown");
                    return;
                }
                Err(e) => {
                    failures += 1;
                    tracing::error!(stage = name, error = %e, failures, "stage failed; restarting from its snapshot");
                    tokio::time::sleep(Duration::from_millis(
                        (100u64 << failures.min(5)).min(3000),
                    ))
                    .await;
                }
            }
        }
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested: draining in-flight requests");
}

/// The session-signing secret: kept in the data directory so sessions survive restarts.
fn session_secret(config: &Config) -> Result<Vec<u8>> {
    let path = config.server.data_dir.join("session.key");
    if let Ok(bytes) = std::fs::read(&path) {
        if bytes.len() >= 32 {
            return Ok(bytes);
        }
    }
    let mut bytes = vec![0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(bytes)
}
