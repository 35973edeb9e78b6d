//! Pipeline counters and consumer lag, rendered as Prometheus text.

use super::Shutdown;
use oms_ports::event_log::EventLog;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default, Debug)]
pub struct PipelineMetrics {
    pub processor_events: Counter,
    pub duplicates: Counter,
    pub illegal_transitions: Counter,
    pub unknown_orders: Counter,
    pub ledger_errors: Counter,
    /// (group, topic, partition, records behind the end of the partition)
    lags: Mutex<Vec<(String, String, u32, u64)>>,
}

impl PipelineMetrics {
    pub fn render(&self, out: &mut String) {
        let counters = [
            (
                "oms_processor_events_total",
                "Order-lifecycle events applied by the processor",
                &self.processor_events,
            ),
            (
                "oms_processor_duplicate_events_total",
                "Redelivered events recognised and dropped",
                &self.duplicates,
            ),
            (
                "oms_illegal_transitions_total",
                "Events the order state machine refused (never applied)",
                &self.illegal_transitions,
            ),
            (
                "oms_processor_unknown_order_events_total",
                "Events for orders the store does not know",
                &self.unknown_orders,
            ),
            (
                "oms_ledger_errors_total",
                "Events the balance ledger refused",
                &self.ledger_errors,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}.\n# TYPE {name} counter\n{name} {}",
                c.get()
            );
        }
        let _ = writeln!(out, "# HELP oms_consumer_lag Records between a consumer group's committed position and the end of the partition.\n# TYPE oms_consumer_lag gauge");
        for (group, topic, partition, lag) in self.lags.lock().expect("lags").iter() {
            let _ = writeln!(out, "oms_consumer_lag{{group=\"{group}\",topic=\"{topic}\",partition=\"{partition}\"}} {lag}");
        }
    }

    pub fn lags(&self) -> Vec<(String, String, u32, u64)> {
        self.lags.lock().expect("lags").clone()
    }

    /// Measures the lag of each (group, topic) every `every` until shutdown.
    pub async fn watch_lag(
        self: Arc<Self>,
        log: Arc<dyn EventLog>,
        groups: Vec<(String, String)>,
        every: Duration,
        mut shutdown: Shutdown,
    ) {
        loop {
            let mut lags = Vec::new();
            for (group, topic) in &groups {
                let Ok(n) = log.partition_count(topic).await else {
                    continue;
                };
                for p in 0..n {
                    let end = log.end_offset(topic, p).await.unwrap_or(0);
                    let committed = log
                        .committed(group, topic, p)
                        .await
                        .ok()
                        .flatten()
                        .unwrap_or(0);
                    lags.push((
                        group.to_string(),
                        topic.to_string(),
                        p,
                        end.saturating_sub(committed),
                    ));
                }
            }
            *self.lags.lock().expect("lags") = lags;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

impl crate::api::hooks::MetricsSource for PipelineMetrics {
    fn render(&self, out: &mut String) {
        PipelineMetrics::render(self, out)
    }
}
