//! Runs services: all of them in one process (`oms serve`), or one per process (`oms risk`,
//! `oms venue`, ...), on whichever adapters the configuration names.

use crate::bootstrap;
use crate::config::Config;
use crate::readiness::{ServeMetrics, ServeReadiness};
use anyhow::{Context, Result};
use axum::Router;
use oms_domain::ids::AccountId;
use oms_ports::order_store::OrderStore;
use oms_ports::PortError;
use oms_services::api::rate_limit::RequestRate;
use oms_services::api::{self, ApiConfig, ApiState};
use oms_services::demo::{run_demo_market, DemoConfig};
use oms_services::ingestion::OrderIdGenerator;
use oms_services::marketdata::{
    marketdata_router, run_marketdata_consumer, run_orders_feed, run_processor_updates,
    ApiAccounts, MarketData, MarketDataConfig,
};
use oms_services::pipeline::metrics::PipelineMetrics;
use oms_services::pipeline::processor::{OrderUpdate, ProcessorStage};
use oms_services::pipeline::reference::References;
use oms_services::pipeline::risk::RiskStage;
use oms_services::pipeline::venue::VenueStage;
use oms_services::pipeline::{ended_order_horizon, Shutdown};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// A service `oms` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ingestion,
    Risk,
    Venue,
    Processor,
    MarketData,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Ingestion,
        Role::Risk,
        Role::Venue,
        Role::Processor,
        Role::MarketData,
    ];
}

pub async fn run(config: Config, roles: &[Role]) -> Result<()> {
    let ports = crate::ports::open(&config).await?;
    let has = |r: Role| roles.contains(&r);
    // Accounts are created by the ingestion side only, so two processes never race to create
    // the fee account; the others wait for it.
    let fee_account = if has(Role::Ingestion) {
        let boot = bootstrap::run(&config, &ports.log, &ports.store).await?;
        if let Some((account, key)) = &boot.new_demo_key {
            // Printed once, on the first start only: the key is stored hashed.
            println!("\n  Demo account {account} created. Its API key (shown once, keep it):\n\n    {key}\n");
        }
        boot.fee_account
    } else {
        wait_for_fee_account(&ports.store).await?
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let metrics = Arc::new(PipelineMetrics::default());
    let (updates, _) = broadcast::channel::<OrderUpdate>(16_384);
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    let mut lag_groups = Vec::new();
    let names = config.log.names.clone();

    if has(Role::Risk) {
        let references = References::default();
        tasks.push(tokio::spawn(references.clone().follow(
            ports.log.clone(),
            names.marketdata_topic.clone(),
            stop_rx.clone(),
        )));
        let (log, store, cfg, stage_names) = (
            ports.log.clone(),
            ports.store.clone(),
            config.clone(),
            names.clone(),
        );
        tasks.push(supervise("risk", stop_rx.clone(), move |s| {
            RiskStage {
                log: log.clone(),
                store: store.clone(),
                instruments: cfg.instruments.clone(),
                config: cfg.risk.clone(),
                fee_account,
                references: references.clone(),
                snapshot_every: cfg.pipeline.snapshot_every,
                snapshot_max_age: Duration::from_secs(cfg.pipeline.snapshot_max_age_secs.max(1)),
                remember_ended: remember_ended(&cfg),
                names: stage_names.clone(),
            }
            .run(s)
        }));
        lag_groups.push((names.risk_group.clone(), names.orders_topic.clone()));
    }
    if has(Role::Venue) {
        let (log, store, cfg, stage_names) = (
            ports.log.clone(),
            ports.store.clone(),
            config.clone(),
            names.clone(),
        );
        tasks.push(supervise("venue", stop_rx.clone(), move |s| {
            VenueStage {
                log: log.clone(),
                store: store.clone(),
                instruments: cfg.instruments.clone(),
                fee_account,
                snapshot_every: cfg.pipeline.snapshot_every,
                snapshot_max_age: Duration::from_secs(cfg.pipeline.snapshot_max_age_secs.max(1)),
                tick_every: Duration::from_millis(cfg.pipeline.tick_millis.max(10)),
                names: stage_names.clone(),
            }
            .run(s)
        }));
        lag_groups.push((names.venue_group.clone(), names.venue_topic.clone()));
    }
    if has(Role::Processor) {
        let (log, store, cfg, m, up, stage_names) = (
            ports.log.clone(),
            ports.store.clone(),
            config.clone(),
            metrics.clone(),
            updates.clone(),
            names.clone(),
        );
        tasks.push(supervise("processor", stop_rx.clone(), move |s| {
            ProcessorStage {
                log: log.clone(),
                store: store.clone(),
                snapshot_every: cfg.pipeline.snapshot_every,
                snapshot_max_age: Duration::from_secs(cfg.pipeline.snapshot_max_age_secs.max(1)),
                remember_ended: remember_ended(&cfg),
                metrics: m.clone(),
                updates: up.clone(),
                names: stage_names.clone(),
                fee_account,
            }
            .run(s)
        }));
        lag_groups.push((names.processor_group.clone(), names.orders_topic.clone()));
    }
    tasks.push(tokio::spawn(metrics.clone().watch_lag(
        ports.log.clone(),
        lag_groups,
        Duration::from_secs(2),
        stop_rx.clone(),
    )));

    let api_config = ApiConfig {
        idempotency_ttl: Duration::from_secs(config.idempotency.ttl_secs),
        secure_cookies: config.server.secure_cookies,
        orders_topic: names.orders_topic.clone(),
        partitions: config.log.orders_partitions,
        processor_group: names.processor_group.clone(),
        session_secret: session_secret(&config)?,
        operator_key_hashes: config.admin.key_sha256.iter().cloned().collect(),
        request_rate: RequestRate {
            per_second: config.server.requests_per_second,
            burst: config.server.request_burst,
        },
        fee_account: Some(fee_account),
        ..ApiConfig::default()
    };
    let serve_metrics = Arc::new(ServeMetrics {
        pipeline: metrics.clone(),
        marketdata: Default::default(),
    });
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
    .with_metrics_source(serve_metrics.clone());
    let state = match &ports.request_limits {
        Some(limits) => state.with_shared_request_limits(limits.clone()),
        None => state,
    };

    let mut extra = Router::new();
    if has(Role::MarketData) {
        let resolver = Arc::new(ApiAccounts(state.clone()));
        let md_config = MarketDataConfig {
            instruments: config.instruments.clone(),
            topic: names.marketdata_topic.clone(),
            group: names.marketdata_group.clone(),
            orders_topic: names.orders_topic.clone(),
            orders_group: names.marketdata_orders_group.clone(),
            snapshot_name: names.marketdata_group.clone(),
            ..MarketDataConfig::default()
        };
        let md = MarketData::new(md_config, ports.store.clone(), resolver);
        let _ = serve_metrics.marketdata.set(md.clone());
        let (m, log) = (md.clone(), ports.log.clone());
        tasks.push(supervise("marketdata", stop_rx.clone(), move |s| {
            let (md, log) = (m.clone(), log.clone());
            async move {
                run_marketdata_consumer(md, log, s)
                    .await
                    .map_err(|e| PortError::Other(e.to_string()))
            }
        }));
        if has(Role::Processor) {
            // In one process the private channel follows the processor's persisted updates.
            tasks.push(tokio::spawn(run_processor_updates(
                md.clone(),
                updates.subscribe(),
                stop_rx.clone(),
            )));
        } else {
            let (m, log) = (md.clone(), ports.log.clone());
            tasks.push(supervise("orders-feed", stop_rx.clone(), move |s| {
                let (md, log) = (m.clone(), log.clone());
                async move {
                    run_orders_feed(md, log, s)
                        .await
                        .map_err(|e| PortError::Other(e.to_string()))
                }
            }));
        }
        if has(Role::Ingestion) && config.demo.enabled {
            let mut demo = DemoConfig::default();
            demo.settings.seed = config.demo.seed;
            let (state, md, stop) = (state.clone(), md.clone(), stop_rx.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = run_demo_market(demo, state, Some(md), stop).await {
                    tracing::error!(error = %e, "demo market stopped");
                }
            }));
        }
        extra = extra.merge(marketdata_router(md));
    }
    if has(Role::Ingestion) {
        extra = extra.merge(crate::static_files::routes(&config.server.static_dir));
    }
    // Every process answers /health, /ready and /metrics; only ingestion takes orders.
    let pending = state.pending_responses();
    let app = if has(Role::Ingestion) {
        api::router_with(state, extra)
    } else {
        api::ops_router_with(state, extra)
    };

    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    tracing::info!(address = %config.server.listen, ?roles, "crypto-oms serving");
    println!(
        "crypto-oms ({roles:?}) is listening on http://{}",
        config.server.listen
    );

    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    if !pending.drain(grace).await {
        // A retry after the lock resumes those requests: nothing is placed twice.
        tracing::warn!("some idempotent responses were not stored within {grace:?}");
    }
    tracing::info!("HTTP drained; stopping the pipeline");
    let _ = stop_tx.send(true);
    let all = async {
        for t in tasks {
            let _ = t.await;
        }
    };
    if tokio::time::timeout(grace, all).await.is_err() {
        tracing::warn!(
            "pipeline did not stop within {grace:?}; exiting anyway (the log is durable)"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// The fee account, created by the ingestion service's first start.
async fn wait_for_fee_account(store: &Arc<dyn OrderStore>) -> Result<AccountId> {
    for attempt in 0.. {
        if let Some(a) = store.account_named(bootstrap::FEE_ACCOUNT_NAME).await? {
            return Ok(a.id);
        }
        if attempt % 20 == 0 {
            tracing::info!("waiting for the fee account (created by the first `oms ingestion`)");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    unreachable!("the loop only ends by returning")
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
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested: draining in-flight requests");
}

/// How long the ledgers remember ended orders: derived from how long ingestion keeps
/// idempotency keys, so every process given the same configuration agrees.
fn remember_ended(config: &Config) -> Duration {
    ended_order_horizon(
        Duration::from_secs(config.idempotency.ttl_secs),
        api::IDEMPOTENCY_LOCK_TTL,
    )
}

/// The session-signing secret: `server.sessionSecret` (every ingestion instance behind one load
/// balancer needs the same), else kept in the data directory so sessions survive restarts.
fn session_secret(config: &Config) -> Result<Vec<u8>> {
    if let Some(secret) = &config.server.session_secret {
        if secret.len() >= 32 {
            return Ok(secret.clone().into_bytes());
        }
        anyhow::bail!("server.sessionSecret must be at least 32 characters");
    }
    let path = config.server.data_dir.join("session.key");
    if let Ok(bytes) = std::fs::read(&path) {
        if bytes.len() >= 32 {
            return Ok(bytes);
        }
    }
    std::fs::create_dir_all(&config.server.data_dir)?;
    let mut bytes = vec![0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(bytes)
}
