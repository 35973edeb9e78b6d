//! What `oms` adds to `/ready` (consumer groups keeping up with the log) and to `/metrics`
//! (pipeline counters and lag, market data).

use async_trait::async_trait;
use oms_services::api::hooks::{MetricsSource, Readiness};
use oms_services::marketdata::MarketData;
use oms_services::pipeline::metrics::PipelineMetrics;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// Behind by more than this many records, a consumer group is reported not ready.
const MAX_READY_LAG: u64 = 100_000;

pub struct ServeReadiness {
    pub metrics: Arc<PipelineMetrics>,
}

#[async_trait]
impl Readiness for ServeReadiness {
    async fn check(&self) -> Vec<(String, bool, Option<String>)> {
        let mut worst: BTreeMap<String, u64> = BTreeMap::new();
        for (group, _, _, lag) in self.metrics.lags() {
            let w = worst.entry(group).or_default();
            *w = (*w).max(lag);
        }
        worst
            .into_iter()
            .map(|(group, lag)| {
                (
                    format!("consumer:{group}"),
                    lag <= MAX_READY_LAG,
                    Some(format!("lag {lag}")),
                )
            })
            .collect()
    }
}

/// Pipeline metrics, plus market data's once it exists (it is built after the API state).
pub struct ServeMetrics {
    pub pipeline: Arc<PipelineMetrics>,
    pub marketdata: OnceLock<MarketData>,
}

impl MetricsSource for ServeMetrics {
    fn render(&self, out: &mut String) {
        self.pipeline.render(out);
        if let Some(md) = self.marketdata.get() {
            md.render_metrics(out);
        }
    }
}
