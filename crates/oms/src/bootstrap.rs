//! First start: the fee account, the demo account (whose key is printed once), and the
//! accounts named in the configuration. Deposits carry fixed references, so running this again
//! never credits twice.

use crate::config::Config;
use anyhow::{Context, Result};
use oms_domain::events::{Envelope, Event};
use oms_domain::ids::{AccountId, Asset};
use oms_domain::Decimal;
use oms_ports::event_log::EventLog;
use oms_ports::order_store::{KeyScope, OrderStore};
use oms_services::api::auth::hash_api_key;
use oms_services::codec::encode_event;
use oms_services::ingestion::publish::deposit_reference;
use oms_services::pipeline::now;
use std::sync::Arc;

pub const FEE_ACCOUNT_NAME: &str = "fees";
pub const DEMO_ACCOUNT_NAME: &str = "demo";

/// What a start found or made.
pub struct Bootstrapped {
    pub fee_account: AccountId,
    /// The demo account's key, only on the start that created it.
    pub new_demo_key: Option<(AccountId, String)>,
}

pub async fn run(
    config: &Config,
    log: &Arc<dyn EventLog>,
    store: &Arc<dyn OrderStore>,
) -> Result<Bootstrapped> {
    let first_start = store.accounts_page(None, 1).await?.is_empty();
    let fee_account = store
        .find_or_create_account(FEE_ACCOUNT_NAME, false, now())
        .await?
        .0
        .id;
    let mut new_demo_key = None;
    // Only the start that creates it funds it and prints its key (another instance starting
    // at the same moment finds it taken).
    let demo = match first_start {
        true => Some(
            store
                .find_or_create_account(DEMO_ACCOUNT_NAME, true, now())
                .await?,
        ),
        false => None,
    };
    if let Some((demo, true)) = demo {
        let key = new_api_key()?;
        store
            .add_api_key(demo.id, &hash_api_key(&key), KeyScope::Trade, now())
            .await?;
        let d = |s: &str| s.parse::<Decimal>().expect("literal decimal");
        let funds = [
            ("USD", d("1000000")),
            ("BTC", d("10")),
            ("ETH", d("200")),
            ("SOL", d("10000")),
        ];
        deposit_all(
            log,
            &config.log.names.orders_topic,
            demo.id,
            funds.iter().map(|(a, v)| (Asset::new(*a), *v)),
            "opening",
        )
        .await?;
        new_demo_key = Some((demo.id, key));
    }
    for wanted in &config.accounts {
        let (account, created) = store
            .find_or_create_account(&wanted.name, false, now())
            .await?;
        if !created {
            continue;
        }
        let hash = match (&wanted.api_key, &wanted.api_key_sha256) {
            (Some(key), _) => Some(hash_api_key(key)),
            (None, Some(hash)) => Some(hash.to_lowercase()),
            (None, None) => None,
        };
        if let Some(hash) = hash {
            store
                .add_api_key(account.id, &hash, KeyScope::Trade, now())
                .await?;
        }
        let funds = wanted
            .deposits
            .iter()
            .map(|(a, v)| (Asset::new(a.clone()), *v));
        deposit_all(
            log,
            &config.log.names.orders_topic,
            account.id,
            funds,
            "config",
        )
        .await?;
        tracing::info!(account = %account.id, name = %wanted.name, "account from configuration created");
    }
    Ok(Bootstrapped {
        fee_account,
        new_demo_key,
    })
}

/// Credits funds with one durable append; each deposit's reference makes it happen once.
pub async fn deposit_all(
    log: &Arc<dyn EventLog>,
    orders_topic: &str,
    account: AccountId,
    funds: impl Iterator<Item = (Asset, Decimal)>,
    reference: &str,
) -> Result<()> {
    let at = now();
    let records = funds
        .map(|(asset, amount)| {
            let reference = deposit_reference(reference, &asset);
            encode_event(&Envelope::new(
                at,
                Event::Deposit {
                    account,
                    asset,
                    amount,
                    reference,
                },
            ))
        })
        .collect::<Vec<_>>();
    if !records.is_empty() {
        log.append(orders_topic, records)
            .await
            .context("appending deposits")?;
    }
    Ok(())
}

/// A new random API key (see [`oms_services::api::auth::new_api_key`]).
pub fn new_api_key() -> Result<String> {
    oms_services::api::auth::new_api_key().map_err(|e| anyhow::anyhow!("no randomness: {e}"))
}
