//! Configuration: defaults, then a TOML file, then environment variables.
//!
//! Keys are camelCase, like the JSON API. An environment variable `OMS_<SECTION>__<KEY>`
//! overrides one key: `OMS_SERVER__LISTEN=0.0.0.0:8080`, `OMS_RISK__MAX_OPEN_ORDERS=50`
//! (snake case is turned into camelCase). Values are read as TOML scalars (numbers, booleans),
//! else as strings.

use anyhow::{bail, Context, Result};
use oms_domain::instrument::{default_instruments, Instrument};
use oms_domain::risk::RiskConfig;
use oms_domain::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub idempotency: IdempotencyConfig,
    pub pipeline: PipelineConfig,
    pub risk: RiskConfig,
    pub demo: DemoConfig,
    pub instruments: Vec<Instrument>,
    /// Accounts created at start if missing, with their API keys and opening deposits.
    pub accounts: Vec<AccountConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            log: LogConfig::default(),
            idempotency: IdempotencyConfig::default(),
            pipeline: PipelineConfig::default(),
            risk: RiskConfig::default(),
            demo: DemoConfig::default(),
            instruments: default_instruments(),
            accounts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The built dashboard, served at `/`.
    pub static_dir: PathBuf,
    pub log_format: LogFormat,
    /// `tracing` filter, e.g. `info` or `oms_services=debug,info`.
    pub log_level: String,
    /// Distinguishes ingestion instances in order ids (0..1023).
    pub instance_id: u16,
    /// How long shutdown waits for in-flight requests and pipeline batches.
    pub shutdown_grace_secs: u64,
    /// Mark the session cookie `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".parse().expect("literal address"),
            data_dir: PathBuf::from("./data"),
            static_dir: PathBuf::from("frontend/dist"),
            log_format: LogFormat::Human,
            log_level: "info".into(),
            instance_id: 0,
            shutdown_grace_secs: 10,
            secure_cookies: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LogConfig {
    pub orders_partitions: u32,
    pub venue_partitions: u32,
    pub marketdata_partitions: u32,
    /// fsync every group commit. Turning it off loses acknowledged orders on power loss.
    pub fsync: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            orders_partitions: 4,
            venue_partitions: 2,
            marketdata_partitions: 2,
            fsync: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct IdempotencyConfig {
    pub ttl_secs: u64,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            ttl_secs: 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Events a stage handles between snapshots of a partition's state.
    pub snapshot_every: u64,
    /// How often time reaches the books, expiring GTD orders.
    pub tick_millis: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            snapshot_every: 20_000,
            tick_millis: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Run the simulated market maker and takers.
    pub enabled: bool,
    pub seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            enabled: true,
            seed: 42,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountConfig {
    pub name: String,
    /// The key in clear (kept only as its hash), or its SHA-256 hex.
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub api_key_sha256: Option<String>,
    /// Credited once, when the account is created.
    #[serde(default)]
    pub deposits: BTreeMap<String, Decimal>,
}

impl Config {
    /// Loads defaults, then `file` if given, then `OMS_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut root = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut root, std::env::vars())?;
        let config: Config = toml::Value::Table(root)
            .try_into()
            .context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if self.instruments.is_empty() {
            bail!("instruments: at least one instrument is required");
        }
        for i in &self.instruments {
            if i.tick_size <= Decimal::ZERO || i.step_size <= Decimal::ZERO {
                bail!(
                    "instruments: {} needs a positive tickSize and stepSize",
                    i.symbol
                );
            }
        }
        if self.server.instance_id > 1023 {
            bail!("server.instanceId must be 0..=1023");
        }
        for p in [
            self.log.orders_partitions,
            self.log.venue_partitions,
            self.log.marketdata_partitions,
        ] {
            if p == 0 {
                bail!("log: partition counts must be at least 1");
            }
        }
        Ok(())
    }
}

/// Overlays `OMS_A__B_C=value` as `a.bC = value`.
fn apply_env(root: &mut toml::Table, vars: impl Iterator<Item = (String, String)>) -> Result<()> {
    for (name, value) in vars {
        let Some(path) = name.strip_prefix("OMS_") else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(camel_case).collect();
        if keys.iter().any(|k| k.is_empty()) {
            bail!("environment variable {name}: empty key segment");
        }
        let mut table = &mut *root;
        for key in &keys[..keys.len() - 1] {
            let entry = table
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(Default::default()));
            table = match entry {
                toml::Value::Table(t) => t,
                _ => bail!("environment variable {name}: {key} is not a section"),
            };
        }
        table.insert(keys[keys.len() - 1].clone(), scalar(&value));
    }
    Ok(())
}

fn camel_case(segment: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in segment.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

fn scalar(text: &str) -> toml::Value {
    if let Ok(b) = text.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(i) = text.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    toml::Value::String(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_nested_keys_in_camel_case() {
        let mut root: toml::Table = "[server]\nlogFormat = \"json\"\n".parse().unwrap();
        apply_env(
            &mut root,
            [
                ("OMS_SERVER__LISTEN".to_string(), "0.0.0.0:9000".to_string()),
                ("OMS_RISK__MAX_OPEN_ORDERS".to_string(), "7".to_string()),
                ("OMS_DEMO__ENABLED".to_string(), "false".to_string()),
                ("PATH".to_string(), "/bin".to_string()),
            ]
            .into_iter(),
        )
        .unwrap();
        let c: Config = toml::Value::Table(root).try_into().unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.server.log_format, LogFormat::Json);
        assert_eq!(c.risk.max_open_orders, 7);
        assert!(!c.demo.enabled);
        assert_eq!(c.instruments.len(), 4);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let root: toml::Table = "[server]\nlisten_addr = \"x\"\n".parse().unwrap();
        let err = toml::Value::Table(root).try_into::<Config>().unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[test]
    fn instruments_come_from_the_file_with_exact_decimals() {
        let text = r#"
[[instruments]]
symbol = "BTC/USD"
base = "BTC"
quote = "USD"
tickSize = "0.01"
stepSize = "0.00001"
minQuantity = "0.00001"
maxQuantity = "100"
minNotional = "10"
status = "TRADING"
makerFee = "0.001"
takerFee = "0.002"
priceBand = "0.05"
"#;
        let c: Config = toml::Value::Table(text.parse().unwrap())
            .try_into()
            .unwrap();
        assert_eq!(c.instruments.len(), 1);
        assert_eq!(c.instruments[0].price_band.to_string(), "0.05");
    }
}
