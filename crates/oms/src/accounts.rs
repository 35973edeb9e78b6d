//! `oms accounts`: create and list accounts, issue API keys, credit deposits.

use crate::bootstrap::{deposit_all, new_api_key};
use crate::config::Config;
use anyhow::{bail, Result};
use clap::Subcommand;
use oms_domain::ids::AccountId;
use oms_domain::Decimal;
use oms_ports::order_store::KeyScope;
use oms_services::api::auth::hash_api_key;
use oms_services::api::auth::new_admin_key;
use oms_services::api::routes::admin::{
    check_account_name, check_deposit_amount, check_deposit_asset, check_deposit_reference,
    credited_otherwise,
};
use oms_services::ingestion::FieldError;
use oms_services::pipeline::now;

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// Creates an account and prints its API key (shown once).
    Create {
        #[arg(long)]
        name: String,
    },
    /// Lists accounts with their balances.
    List,
    /// Issues another API key for an account and prints it (shown once).
    Key {
        #[arg(long)]
        account: u64,
        /// A key that may only read (orders, fills, balances, market data), never trade: for
        /// monitoring and reconciliation tools.
        #[arg(long)]
        read_only: bool,
    },
    /// Revokes one of an account's API keys, named by its id: the key's SHA-256 in hex
    /// (`printf %s KEY | sha256sum`).
    RevokeKey {
        #[arg(long)]
        account: u64,
        #[arg(long)]
        key_id: String,
    },
    /// Credits an amount of an asset to an account, once per reference.
    Deposit {
        #[arg(long)]
        account: u64,
        #[arg(long)]
        asset: String,
        /// Exact decimal, e.g. 1000 or 0.5.
        #[arg(long)]
        amount: String,
        /// Makes the deposit idempotent: the same reference is credited only once.
        #[arg(long)]
        reference: Option<String>,
    },
    /// Makes an operator key for the admin API (`/api/admin/...`, header `X-Admin-Key`):
    /// prints the key (shown once) and the SHA-256 to put in `admin.keySha256`.
    AdminKey,
}

pub async fn run(config: Config, command: AccountsCommand) -> Result<()> {
    if let AccountsCommand::AdminKey = command {
        // Touches no storage (the key lives only in the configuration, as its hash), so it
        // works beside a running `oms serve`.
        return print_admin_key();
    }
    let ports = crate::ports::open(&config).await?;
    match command {
        AccountsCommand::Create { name } => {
            // The admin API's rules.
            let name = check_account_name(&name).map_err(rule)?;
            let (account, created) = ports
                .store
                .find_or_create_account(&name, false, now())
                .await?;
            if !created {
                bail!("an account named {name:?} exists already: {}", account.id);
            }
            let key = new_api_key()?;
            ports
                .store
                .add_api_key(account.id, &hash_api_key(&key), KeyScope::Trade, now())
                .await?;
            println!("account {} ({}) created", account.id, account.name);
            println!("API key (shown once, store it now): {key}");
        }
        AccountsCommand::List => {
            for a in ports.store.accounts().await? {
                let balances = ports.store.balances(a.id).await?;
                let text: Vec<String> = balances
                    .iter()
                    .map(|b| format!("{} {} (+{} reserved)", b.asset, b.available, b.reserved))
                    .collect();
                println!(
                    "{:>6}  {:<16} {}{}",
                    a.id,
                    a.name,
                    if a.demo { "[demo] " } else { "" },
                    text.join(", ")
                );
            }
        }
        AccountsCommand::Key { account, read_only } => {
            let id = existing(&ports, account).await?;
            let key = new_api_key()?;
            let scope = if read_only {
                KeyScope::Read
            } else {
                KeyScope::Trade
            };
            ports
                .store
                .add_api_key(id, &hash_api_key(&key), scope, now())
                .await?;
            let what = if read_only {
                "read-only API key"
            } else {
                "API key"
            };
            println!("{what} for account {id} (shown once, store it now): {key}");
        }
        AccountsCommand::RevokeKey { account, key_id } => {
            let id = existing(&ports, account).await?;
            if !ports
                .store
                .revoke_api_key(id, &key_id.to_ascii_lowercase())
                .await?
            {
                bail!("account {id} has no key with id {key_id}");
            }
            println!("key {key_id} of account {id} revoked");
        }
        AccountsCommand::Deposit {
            account,
            asset,
            amount,
            reference,
        } => {
            let id = existing(&ports, account).await?;
            let amount: Decimal = match amount.parse::<Decimal>() {
                Ok(a) if !amount.contains(['e', 'E']) => a,
                _ => bail!("--amount must be a positive plain decimal, got {amount:?}"),
            };
            // The admin API's rules, which keep every accepted deposit exactly creditable.
            let amount = check_deposit_amount(amount).map_err(rule)?;
            let asset = check_deposit_asset(&config.instruments, &asset).map_err(rule)?;
            let reference = match reference {
                Some(r) => check_deposit_reference(&r).map_err(rule)?,
                None => format!("cli:{}", now().millis()),
            };
            // As the admin API: a credited reference with another amount would never be credited.
            let credited =
                credited_otherwise(ports.store.as_ref(), id, &reference, &asset, amount).await?;
            if let Some(credited) = credited {
                bail!(
                    "--reference {reference:?} in {asset} was credited to account {id} with {credited} already; a reference credits once"
                );
            }
            deposit_all(
                &ports.log,
                &config.log.names.orders_topic,
                id,
                std::iter::once((asset.clone(), amount)),
                &reference,
            )
            .await?;
            println!("deposit of {amount} {asset} to account {id} recorded (reference {reference}, asset {asset})");
        }
        AccountsCommand::AdminKey => print_admin_key()?,
    }
    Ok(())
}

fn print_admin_key() -> Result<()> {
    let key = new_admin_key().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let hash = hash_api_key(&key);
    println!("admin key (shown once, store it now): {key}");
    println!("add its hash to the configuration of every API instance:");
    println!("  [admin]");
    println!("  keySha256 = [\"{hash}\"]");
    println!("or in the environment: OMS_ADMIN__KEY_SHA256={hash}");
    Ok(())
}

async fn existing(ports: &crate::ports::Ports, account: u64) -> Result<AccountId> {
    let id = AccountId(account);
    if ports.store.account(id).await?.is_none() {
        bail!("no account {account}");
    }
    Ok(id)
}

/// A refusal by one of the admin API's rules, said as the command's: `--field: why`.
fn rule(e: FieldError) -> anyhow::Error {
    anyhow::anyhow!("--{}: {}", e.field, e.detail)
}
