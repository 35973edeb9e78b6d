//! How the demo's orders enter the system: through the very functions `POST /api/orders` and
//! `DELETE /api/orders/{id}` use (the same validation, order ids and `orders` topic), on behalf
//! of the demo's own accounts.

use super::DemoError;
use crate::api::ApiState;
use crate::ingestion::clock;
use crate::ingestion::publish::publish_order_event;
use crate::ingestion::validate::validate_new_order;
use async_trait::async_trait;
use oms_domain::events::Event;
use oms_domain::ids::{AccountId, Asset, OrderId};
use oms_domain::order::OrderStatus;
use oms_domain::Decimal;
use oms_ports::order_store::{Account, Balance, OrderQuery};
use serde_json::Value;

#[async_trait]
pub trait DemoGateway: Send + Sync {
    /// Places an order given as a `POST /api/orders` body; returns its id.
    async fn place(&self, account: AccountId, request: &Value) -> Result<OrderId, DemoError>;
    /// Requests the cancel of an order unless it is known to be final already.
    async fn cancel(&self, account: AccountId, order: OrderId) -> Result<(), DemoError>;
    /// Orders of an account that may still rest on a book.
    async fn live_orders(&self, account: AccountId) -> Result<Vec<OrderId>, DemoError>;
    /// The account of this name, created as a demo account if there is none; `true` if
    /// this call created it.
    async fn find_or_create_account(&self, name: &str) -> Result<(Account, bool), DemoError>;
    async fn balances(&self, account: AccountId) -> Result<Vec<Balance>, DemoError>;
    async fn deposit(
        &self,
        account: AccountId,
        asset: &Asset,
        amount: Decimal,
        reference: &str,
    ) -> Result<(), DemoError>;
}

/// The in-process gateway over the API's state.
#[derive(Clone)]
pub struct ApiGateway(pub ApiState);

#[async_trait]
impl DemoGateway for ApiGateway {
    async fn place(&self, account: AccountId, request: &Value) -> Result<OrderId, DemoError> {
        let s = &self.0;
        let now = clock::now();
        let valid = validate_new_order(request, &s.by_symbol, now).map_err(|errs| {
            DemoError::Rejected(
                errs.iter()
                    .map(|e| format!("{}: {}", e.field, e.detail))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let order_id = OrderId(s.ids.next_id());
        let new = valid.into_new_order(order_id, account, now);
        publish_order_event(
            s.log.as_ref(),
            &s.config.orders_topic,
            now,
            Event::OrderCreated(new),
        )
        .await?;
        Ok(order_id)
    }

    async fn cancel(&self, account: AccountId, order: OrderId) -> Result<(), DemoError> {
        let s = &self.0;
        // An order not stored yet is still cancelled: its events share the account's partition,
        // so the cancel arrives after its creation.
        if let Some(o) = s.store.order(account, order).await? {
            if o.status.is_final() {
                return Ok(());
            }
        }
        let event = Event::CancelRequested {
            account,
            order_id: order,
            reason: None,
        };
        publish_order_event(s.log.as_ref(), &s.config.orders_topic, clock::now(), event).await?;
        Ok(())
    }

    async fn live_orders(&self, account: AccountId) -> Result<Vec<OrderId>, DemoError> {
        let mut ids = Vec::new();
        for status in [
            OrderStatus::New,
            OrderStatus::Accepted,
            OrderStatus::PartiallyFilled,
        ] {
            let q = OrderQuery {
                account: Some(account),
                status: Some(status),
                limit: 500,
                ..OrderQuery::default()
            };
            ids.extend(self.0.store.orders(&q).await?.iter().map(|o| o.order_id));
        }
        Ok(ids)
    }

    async fn find_or_create_account(&self, name: &str) -> Result<(Account, bool), DemoError> {
        Ok(self
            .0
            .store
            .find_or_create_account(name, true, clock::now())
            .await?)
    }

    async fn balances(&self, account: AccountId) -> Result<Vec<Balance>, DemoError> {
        Ok(self.0.store.balances(account).await?)
    }

    async fn deposit(
        &self,
        account: AccountId,
        asset: &Asset,
        amount: Decimal,
        reference: &str,
    ) -> Result<(), DemoError> {
        let s = &self.0;
        let event = Event::Deposit {
            account,
            asset: asset.clone(),
            amount,
            reference: reference.to_string(),
        };
        publish_order_event(s.log.as_ref(), &s.config.orders_topic, clock::now(), event).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiConfig;
    use crate::codec::decode_event;
    use crate::demo::{DemoConfig, DemoMarket};
    use crate::ingestion::OrderIdGenerator;
    use oms_domain::instrument::default_instruments;
    use oms_embedded::{FileLog, FileLogOptions, SqliteOptions, SqliteStore};
    use oms_ports::event_log::EventLog;
    use oms_ports::order_store::OrderStore;
    use std::sync::Arc;

    #[tokio::test]
    async fn demo_orders_go_through_the_api_path_onto_the_orders_topic() {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::open(
            &dir.path().join("log"),
            FileLogOptions {
                fsync: false,
                ..FileLogOptions::default()
            },
        )
        .await
        .unwrap();
        let log: Arc<dyn EventLog> = Arc::new(log);
        let store = SqliteStore::open(&dir.path().join("oms.db"), SqliteOptions::default())
            .await
            .unwrap();
        let api = ApiState::new(
            log.clone(),
            Arc::new(store.clone()),
            Arc::new(store.idempotency()),
            default_instruments(),
            ApiConfig::default(),
            Arc::new(OrderIdGenerator::new(1).unwrap()),
        );
        api.ensure_topics().await.unwrap();
        let mut demo = DemoMarket::setup(
            DemoConfig::default(),
            ApiGateway(api.clone()),
            &default_instruments(),
            |_| None,
        )
        .await
        .unwrap();
        for _ in 0..16 {
            demo.step().await;
        }
        assert_eq!(demo.stats.refused, 0);
        let accounts = store.accounts().await.unwrap();
        assert_eq!(accounts.len(), 3);
        assert!(accounts.iter().all(|a| a.demo));

        let (mut created, mut cancels, mut deposits) = (0, 0, 0);
        for p in 0..log.partition_count("orders").await.unwrap() {
            for rec in log.read("orders", p, 0, 100_000).await.unwrap() {
                let env = decode_event(&rec).unwrap();
                let account = env.event.account().unwrap();
                assert_eq!(
                    rec.key,
                    account.to_string().into_bytes(),
                    "keyed by account"
                );
                match &env.event {
                    Event::OrderCreated(o) => {
                        created += 1;
                        assert!(accounts.iter().any(|a| a.id == o.account));
                    }
                    Event::CancelRequested { account, .. } => {
                        cancels += 1;
                        assert_eq!(*account, demo.accounts().maker);
                    }
                    Event::Deposit { .. } => deposits += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(created, demo.stats.placed);
        assert_eq!(cancels, 40);
        assert_eq!(deposits, 12);
    }
}
