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
use oms_ports::event_log::valid_topic_name;
use oms_services::api::rate_limit::RequestRate;
use oms_services::codec::LogNames;
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
    pub store: StoreConfig,
    /// The Kafka connection, when `log.backend = "kafka"` (the seed's `Kafka:*` settings).
    pub kafka: oms_kafka::KafkaConfig,
    pub admin: AdminConfig,
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
            store: StoreConfig::default(),
            kafka: oms_kafka::KafkaConfig::default(),
            admin: AdminConfig::default(),
        }
    }
}

/// The operators' admin API (`/api/admin/...`), off until a key is configured.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AdminConfig {
    /// SHA-256 hex of each operator key (`oms accounts admin-key` makes one): a TOML list, or
    /// one string of hashes separated by commas (`OMS_ADMIN__KEY_SHA256=h1,h2`).
    #[serde(deserialize_with = "hash_list")]
    pub key_sha256: Vec<String>,
}

fn hash_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        List(Vec<String>),
        Joined(String),
    }
    let hashes: Vec<String> = match Given::deserialize(d)? {
        Given::List(l) => l,
        Given::Joined(s) => s.split(',').map(str::to_string).collect(),
    };
    hashes
        .into_iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(h)
            } else {
                Err(serde::de::Error::custom(format!(
                    "admin.keySha256: {h:?} is not a SHA-256 in hex (64 characters)"
                )))
            }
        })
        .collect()
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
    /// Signs session cookies; all ingestion instances behind one load balancer need the same.
    /// Unset: a random secret kept in the data directory.
    pub session_secret: Option<String>,
    /// Requests per second per account in each instance serving the API (0: no limit);
    /// above it, `429 RATE_LIMITED`.
    pub requests_per_second: u32,
    /// How many requests an account may make at once before the rate applies.
    pub request_burst: u32,
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
            session_secret: None,
            requests_per_second: RequestRate::default().per_second,
            request_burst: RequestRate::default().burst,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LogConfig {
    pub backend: LogBackend,
    pub orders_partitions: u32,
    pub venue_partitions: u32,
    pub marketdata_partitions: u32,
    /// fsync every group commit. Turning it off loses acknowledged orders on power loss.
    pub fsync: bool,
    /// Topic and consumer-group names (`[log.names]`).
    pub names: LogNames,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            backend: LogBackend::Embedded,
            orders_partitions: 4,
            venue_partitions: 2,
            marketdata_partitions: 2,
            fsync: true,
            names: LogNames::default(),
        }
    }
}

impl LogConfig {
    fn validate_names(&self) -> Result<()> {
        let n = &self.names;
        let topics = [
            ("log.names.ordersTopic", &n.orders_topic),
            ("log.names.venueTopic", &n.venue_topic),
            ("log.names.marketdataTopic", &n.marketdata_topic),
        ];
        for (key, name) in topics {
            if !valid_topic_name(name) {
                bail!("{key}: {name:?} is not a topic name (1 to 249 of A-Z a-z 0-9 . _ -)");
            }
        }
        if topics[0].1 == topics[1].1 || topics[0].1 == topics[2].1 || topics[1].1 == topics[2].1 {
            bail!("log.names: the orders, venue and market data topics must be three different topics");
        }
        let groups = [
            ("log.names.riskGroup", &n.risk_group),
            ("log.names.venueGroup", &n.venue_group),
            ("log.names.processorGroup", &n.processor_group),
            ("log.names.marketdataGroup", &n.marketdata_group),
            (
                "log.names.marketdataOrdersGroup",
                &n.marketdata_orders_group,
            ),
        ];
        for (i, (key, name)) in groups.iter().enumerate() {
            if name.trim().is_empty() {
                bail!("{key}: a consumer group name is required");
            }
            // Two stages in one group would split the partitions between them: each would
            // see only part of its topic.
            if let Some((other, _)) = groups[..i].iter().find(|(_, n)| n == name) {
                bail!("{key}: {name:?} is already the name of {other}; every stage needs its own group");
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct IdempotencyConfig {
    pub backend: IdempotencyBackend,
    pub ttl_secs: u64,
    /// Redis URL when `backend = "redis"` (the seed's `Redis:ConnectionString`).
    pub redis_url: String,
    /// The seed's `Redis:IdempotencyKeyPrefix`.
    pub key_prefix: String,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            backend: IdempotencyBackend::Journal,
            ttl_secs: 24 * 3600,
            redis_url: "redis://127.0.0.1:6379/".into(),
            key_prefix: "idempotency:".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogBackend {
    Embedded,
    Kafka,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdempotencyBackend {
    /// An append-only journal indexed in memory, `idempotency/` in the data directory: the
    /// embedded default. Little CPU per key; memory in proportion to the keys kept.
    #[serde(alias = "embedded")]
    Journal,
    /// SQLite, `idempotency.db` in the data directory: memory stays flat however many keys
    /// are kept, at about twice the CPU per key.
    Sqlite,
    Redis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    Embedded,
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// PostgreSQL URL when `backend = "postgres"` (the seed's `Database:ConnectionString`).
    pub url: String,
    pub max_connections: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::Embedded,
            url: "postgres://oms@127.0.0.1:5432/oms".into(),
            max_connections: 16,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Events a stage handles between snapshots of a partition's state.
    pub snapshot_every: u64,
    /// Longest a handled event waits for a snapshot of its partition, however few came since:
    /// keep it far below the `orders` and `venue` topics' retention on Kafka.
    pub snapshot_max_age_secs: u64,
    /// How often time reaches the books, expiring GTD orders.
    pub tick_millis: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            snapshot_every: 20_000,
            snapshot_max_age_secs: 3600,
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
        self.log.validate_names()
    }
}

/// The seed's environment variables (`Kafka__BootstrapServers`, ...) and where they go.
const SEED_ENV: &[(&str, &str)] = &[
    ("Kafka__BootstrapServers", "kafka.bootstrapServers"),
    ("Kafka__ClientId", "kafka.clientId"),
    ("Kafka__OrdersTopic", "log.names.ordersTopic"),
    ("Kafka__ConsumerGroup", "log.names.processorGroup"),
    ("Redis__ConnectionString", "idempotency.redisUrl"),
    ("Redis__IdempotencyKeyPrefix", "idempotency.keyPrefix"),
    ("Redis__IdempotencyKeyTTL", "idempotency.ttlSecs"),
    ("Database__ConnectionString", "store.url"),
];

/// Overlays `OMS_A__B_C=value` as `a.bC = value`, and the seed's variables where they belong.
fn apply_env(root: &mut toml::Table, vars: impl Iterator<Item = (String, String)>) -> Result<()> {
    for (name, value) in vars {
        let (keys, value): (Vec<String>, String) =
            if let Some((_, target)) = SEED_ENV.iter().find(|(n, _)| *n == name) {
                (
                    target.split('.').map(String::from).collect(),
                    seed_value(target, &value)?,
                )
            } else if let Some(path) = name.strip_prefix("OMS_").filter(|p| p.contains("__")) {
                // Only `OMS_SECTION__KEY`: other `OMS_*` variables (OMS_CONFIG, OMS_API_KEY)
                // belong to the command line.
                (path.split("__").map(camel_case).collect(), value)
            } else {
                continue;
            };
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

/// Seed values in .NET shapes: `host:port` for Redis, `hh:mm:ss` for the TTL.
fn seed_value(target: &str, value: &str) -> Result<String> {
    Ok(match target {
        "idempotency.redisUrl" if !value.contains("://") => format!("redis://{value}/"),
        "idempotency.ttlSecs" => {
            let parts: Vec<&str> = value.split(':').collect();
            let secs = match parts.as_slice() {
                [h, m, s] => {
                    h.parse::<u64>()? * 3600 + m.parse::<u64>()? * 60 + s.parse::<u64>()?
                }
                _ => value
                    .parse::<u64>()
                    .with_context(|| format!("Redis__IdempotencyKeyTTL: {value:?}"))?,
            };
            secs.to_string()
        }
        _ => value.to_string(),
    })
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
        assert_eq!(c.pipeline.snapshot_max_age_secs, 3600, "the default");
        let c: Config = "[pipeline]\nsnapshotMaxAgeSecs = 60\n[kafka]\nretentionMs = 86400000\n"
            .parse::<toml::Table>()
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(c.pipeline.snapshot_max_age_secs, 60);
        assert_eq!(c.kafka.retention_ms, 86_400_000);
    }

    #[test]
    fn operator_key_hashes_come_as_a_list_or_joined_by_commas() {
        let (a, b) = ("ab".repeat(32), "CD".repeat(32));
        let from_file: Config = format!("[admin]\nkeySha256 = [\"{a}\"]\n")
            .parse::<toml::Table>()
            .map(toml::Value::Table)
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(from_file.admin.key_sha256, vec![a.clone()]);

        let mut root = toml::Table::new();
        let joined = format!("{a}, {b},");
        apply_env(
            &mut root,
            [("OMS_ADMIN__KEY_SHA256".to_string(), joined)].into_iter(),
        )
        .unwrap();
        let from_env: Config = toml::Value::Table(root).try_into().unwrap();
        assert_eq!(from_env.admin.key_sha256, vec![a, "cd".repeat(32)]);
        assert!(Config::default().admin.key_sha256.is_empty());

        for bad in [
            "[admin]\nkeySha256 = [\"oms_plain_key\"]",
            "[admin]\nkeySha256 = \"xyz\"",
        ] {
            let err = toml::Value::Table(bad.parse().unwrap())
                .try_into::<Config>()
                .unwrap_err();
            assert!(err.to_string().contains("not a SHA-256"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_seed_environment_variables_are_understood() {
        let mut root = toml::Table::new();
        apply_env(
            &mut root,
            [
                ("Kafka__BootstrapServers", "kafka:9092"),
                ("Kafka__OrdersTopic", "desk1.orders"),
                ("Kafka__ConsumerGroup", "order-processor-group"),
                ("Redis__ConnectionString", "redis:6379"),
                ("Redis__IdempotencyKeyTTL", "24:00:00"),
                ("Database__ConnectionString", "postgres://oms@db/oms"),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string())),
        )
        .unwrap();
        let c: Config = toml::Value::Table(root).try_into().unwrap();
        assert_eq!(c.kafka.bootstrap_servers, "kafka:9092");
        assert_eq!(c.log.names.orders_topic, "desk1.orders");
        assert_eq!(c.log.names.processor_group, "order-processor-group");
        assert_eq!(c.log.names.risk_group, "risk");
        assert_eq!(c.idempotency.redis_url, "redis://redis:6379/");
        assert_eq!(c.idempotency.ttl_secs, 86400);
        assert_eq!(c.store.url, "postgres://oms@db/oms");
    }

    #[test]
    fn topic_and_group_names_are_checked() {
        let mut c = Config::default();
        c.validate().unwrap();
        c.log.names.venue_topic = "orders".into();
        assert!(c.validate().unwrap_err().to_string().contains("different"));
        c.log.names.venue_topic = "venue/../x".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("log.names.venueTopic"));
        c.log.names.venue_topic = "venue".into();
        c.log.names.processor_group = " ".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("log.names.processorGroup"));
    }

    #[test]
    fn every_stage_has_its_own_group() {
        let mut c = Config::default();
        c.log.names.processor_group = "risk".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("log.names.processorGroup") && err.contains("log.names.riskGroup"),
            "{err}"
        );
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
