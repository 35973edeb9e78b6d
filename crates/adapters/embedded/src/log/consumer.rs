//! The single member of a consumer group on the embedded log.

use super::partition::Partition;
use super::Inner;
use async_trait::async_trait;
use oms_ports::event_log::{Consumer, ConsumerEvent, TopicPartition};
use oms_ports::{PortError, PortResult};
use std::sync::Arc;
use std::time::Duration;

/// Owns every partition of its topics. The first poll returns `Assigned`; later polls return
/// records from the group's committed positions (or offset 0) on, waiting on appends
/// (no polling loop) up to the timeout.
pub struct FileConsumer {
    inner: Arc<Inner>,
    group: String,
    parts: Vec<Owned>,
    assigned: bool,
    /// Where the next poll starts, so a busy partition does not starve the others.
    next_part: usize,
}

struct Owned {
    part: Arc<Partition>,
    tp: TopicPartition,
    position: u64,
}

impl FileConsumer {
    pub(crate) fn new(inner: Arc<Inner>, group: String, parts: Vec<Arc<Partition>>) -> Self {
        let parts = parts
            .into_iter()
            .map(|part| Owned {
                tp: TopicPartition {
                    topic: part.topic.to_string(),
                    partition: part.id,
                },
                part,
                position: 0,
            })
            .collect();
        FileConsumer {
            inner,
            group,
            parts,
            assigned: false,
            next_part: 0,
        }
    }

    fn owned(&mut self, tp: &TopicPartition) -> PortResult<&mut Owned> {
        if !self.assigned {
            return Err(PortError::Invalid(
                "no partitions are assigned before the first poll".into(),
            ));
        }
        self.parts.iter_mut().find(|o| &o.tp == tp).ok_or_else(|| {
            PortError::Invalid(format!(
                "{}/{} is not owned by this consumer",
                tp.topic, tp.partition
            ))
        })
    }

    /// Reads what is there from the owned partitions, round robin, without waiting.
    async fn fetch(&mut self, max: usize) -> PortResult<Vec<oms_ports::event_log::Record>> {
        let mut out = Vec::new();
        let n = self.parts.len();
        for i in 0..n {
            if out.len() >= max {
                break;
            }
            let o = &mut self.parts[(self.next_part + i) % n];
            let got = self
                .inner
                .read(&o.part, o.position, max - out.len())
                .await?;
            if let Some(last) = got.last() {
                o.position = last.offset + 1;
            }
            out.extend(got);
        }
        if n > 0 {
            self.next_part = (self.next_part + 1) % n;
        }
        Ok(out)
    }
}

impl Drop for FileConsumer {
    fn drop(&mut self) {
        self.inner
            .members
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.group);
    }
}

#[async_trait]
impl Consumer for FileConsumer {
    async fn poll(&mut self, max: usize, timeout: Duration) -> PortResult<ConsumerEvent> {
        if !self.assigned {
            for o in &mut self.parts {
                o.position = self.inner.groups.committed(&self.group, &o.tp).unwrap_or(0);
            }
            self.assigned = true;
            return Ok(ConsumerEvent::Assigned(self.assignment()));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let max = max.max(1);
        let inner = self.inner.clone();
        loop {
            // Registered before looking, so an append published in between still wakes us.
            let notified = inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let records = self.fetch(max).await?;
            if !records.is_empty() {
                return Ok(ConsumerEvent::Records(records));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(ConsumerEvent::Records(Vec::new()));
            }
        }
    }

    async fn commit(&mut self, positions: &[(TopicPartition, u64)]) -> PortResult<()> {
        for (tp, _) in positions {
            self.owned(tp)?;
        }
        let inner = self.inner.clone();
        let group = self.group.clone();
        let positions = positions.to_vec();
        tokio::task::spawn_blocking(move || inner.groups.commit(&group, &positions))
            .await
            .map_err(|e| PortError::Other(format!("commit task failed: {e}")))??;
        Ok(())
    }

    async fn seek(&mut self, tp: &TopicPartition, offset: u64) -> PortResult<()> {
        self.owned(tp)?.position = offset;
        Ok(())
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        if !self.assigned {
            return Vec::new();
        }
        self.parts.iter().map(|o| o.tp.clone()).collect()
    }
}
