//! The configuration tree of `braid serve` (docs/configuration.md): every tunable, its
//! built-in default, and where each effective value came from.
//!
//! Layers, each beating the ones before it: built-in defaults, a TOML file
//! (`--config FILE`, else `./braid.toml` when present), environment variables
//! of the form `BRAID_<SECTION>__<KEY>`, then command-line flags.
//! `DATABASE_URL` fills `store.database_url` only when no layer names a store.
//! Everything is checked here, before anything starts, so that an unknown key
//! or a bad value stops the process with a message naming the key and its
//! source instead of surfacing later as a strange runtime failure. The
//! layering itself is figment's ([`layers`]); `braid config` prints the
//! result ([`show`]).

mod layers;
mod show;

pub(crate) use braid_store_postgres::url::mask as mask_url;
pub use layers::Source;
pub use show::print;

use anyhow::{Result, bail};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One configuration key: its dotted path in the tree and the flag that sets
/// it. Its environment variable is derived from the path: `BRAID_` + the
/// path in upper case with `__` between levels.
pub struct Key {
    /// `section.key`, as written in the TOML file.
    pub path: &'static str,
    /// The `braid serve` / `braid config` flag.
    pub flag: &'static str,
    /// A string value: the environment's text is taken as is, never parsed
    /// as a number (`BRAID_STORE__DB=2024` is a file named `2024`).
    pub text: bool,
    /// Masked by `braid config` (it may carry a password).
    pub secret: bool,
    /// A list of strings: the environment's text is split at commas
    /// (`BRAID_SERVER__ALLOWED_HOSTS=a.lan,b.lan`).
    pub list: bool,
    /// An array of tables (`[[llm.endpoints]]`): set in the file only, with
    /// no flag and no environment variable.
    pub tables: bool,
}

impl Key {
    /// The key with this path, if there is one.
    pub fn find(path: &str) -> Option<&'static Key> {
        KEYS.iter().find(|k| k.path == path)
    }
}

const fn key(path: &'static str, flag: &'static str, text: bool, secret: bool) -> Key {
    Key {
        path,
        flag,
        text,
        secret,
        list: false,
        tables: false,
    }
}

const fn list(path: &'static str, flag: &'static str) -> Key {
    Key {
        path,
        flag,
        text: true,
        secret: false,
        list: true,
        tables: false,
    }
}

const fn tables(path: &'static str) -> Key {
    Key {
        path,
        flag: "",
        text: false,
        secret: false,
        list: false,
        tables: true,
    }
}

/// Every key, in the order `braid config` and docs/configuration.md list them.
pub const KEYS: &[Key] = &[
    key("store.db", "--db", true, false),
    key("store.database_url", "--database-url", true, true),
    key("server.bind", "--bind", true, false),
    key(
        "server.body_limit_bytes",
        "--body-limit-bytes",
        false,
        false,
    ),
    key(
        "server.shutdown_grace_s",
        "--shutdown-grace-s",
        false,
        false,
    ),
    key("server.ui_dir", "--ui-dir", true, false),
    list("server.allowed_hosts", "--allowed-host"),
    list("server.allowed_origins", "--allowed-origin"),
    key("executors.workers", "--workers", false, false),
    key("executors.lease_ms", "--lease-ms", false, false),
    key("executors.poll_ms", "--poll-ms", false, false),
    key("scale_out.heartbeat_ms", "--heartbeat-ms", false, false),
    key("scale_out.lease_ms", "--server-lease-ms", false, false),
    key(
        "snapshots.every_events",
        "--snapshot-every-events",
        false,
        false,
    ),
    key("telemetry.otlp_endpoint", "--otlp-endpoint", true, false),
    key("telemetry.service_name", "--service-name", true, false),
    tables("llm.endpoints"),
];

/// The fields of one `[[llm.endpoints]]` table.
pub const ENDPOINT_FIELDS: &[&str] = &[
    "provider",
    "base_url",
    "model",
    "max_concurrency",
    "requests_per_minute",
    "tokens_per_minute",
];

/// The file read when `--config` is not given, if it exists in the current
/// directory.
pub const DEFAULT_FILE: &str = "braid.toml";

/// The whole tree. Field names are the TOML keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where runs are kept.
    pub store: Store,
    /// The HTTP API.
    pub server: Server,
    /// The pool that runs actions.
    pub executors: Executors,
    /// Several processes on one PostgreSQL database.
    pub scale_out: ScaleOut,
    /// Run state snapshots.
    pub snapshots: Snapshots,
    /// Traces (metrics are always served at `/metrics`).
    pub telemetry: Telemetry,
    /// LLM providers.
    #[serde(default)]
    pub llm: Llm,
}

/// Which backend `braid serve` runs on ([`Effective::store`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChoice<'a> {
    /// The embedded SQLite file (`store.db`).
    Sqlite(&'a Path),
    /// A PostgreSQL database (`store.database_url`).
    Postgres(&'a str),
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// The embedded SQLite file.
    pub db: PathBuf,
    /// A PostgreSQL URL (`postgres://user:password@host:port/database`):
    /// when set, the store is that database instead of the SQLite file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// `HOST:PORT` to listen on.
    pub bind: String,
    /// Largest accepted request body (413 `BODY_TOO_LARGE` beyond).
    pub body_limit_bytes: usize,
    /// Seconds in-flight actions get to finish at shutdown.
    pub shutdown_grace_s: u64,
    /// A development aid: serve the web UI from this directory (a built
    /// `web/dist`) instead of the copy embedded in the binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui_dir: Option<PathBuf>,
    /// Host names browsers may reach the server under besides its own
    /// (`name` on any port, or `name:port`); others are refused (DNS rebinding).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) whose pages may call the API besides
    /// the server's own; others are refused 403 `CROSS_ORIGIN`.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// `[executors]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Executors {
    /// Actions in flight at once.
    pub workers: usize,
    /// Task lease, renewed while an attempt runs.
    pub lease_ms: u64,
    /// Fallback poll interval for due tasks.
    pub poll_ms: u64,
}

/// `[scale_out]`: several `braid serve` processes on one PostgreSQL
/// database (docs/postgres.md). Not used on SQLite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleOut {
    /// How often a process renews its lease, adopts the runs of processes
    /// that are gone and reads cancels requested elsewhere.
    pub heartbeat_ms: u64,
    /// A process unheard of for this long is dead: its runs are adopted.
    pub lease_ms: u64,
}

/// `[snapshots]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshots {
    /// Events between snapshots of a run, for projects without their own
    /// `snapshot_every_events`.
    pub every_events: u64,
}

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// Base URL of an OTLP/HTTP collector (`/v1/traces` is appended); runs
    /// are exported as traces only when it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

/// `[llm]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Llm {
    /// `[[llm.endpoints]]`: limits of provider endpoints, beside those of
    /// the model profiles (the smallest holds).
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

/// One `[[llm.endpoints]]` table: the limits of every model profile
/// calling `model` of `provider` at `base_url`, whatever its key variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// `openai`, `anthropic`, `openai_compatible` or `scripted`.
    pub provider: String,
    /// The profiles' `base_url`; unset, the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The provider's model name.
    pub model: String,
    /// Calls in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Prompt and completion tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u32>,
}

impl Default for Config {
    /// The built-in defaults: those of the engine and the server, so that a
    /// `braid serve` without configuration behaves like an embedded engine.
    fn default() -> Config {
        let engine = braid_runtime::Options::default();
        Config {
            store: Store {
                db: PathBuf::from("braid.db"),
                database_url: None,
            },
            server: Server {
                bind: "127.0.0.1:8080".to_string(),
                body_limit_bytes: braid_server::DEFAULT_BODY_LIMIT,
                shutdown_grace_s: 30,
                ui_dir: None,
                allowed_hosts: Vec::new(),
                allowed_origins: Vec::new(),
            },
            executors: Executors {
                workers: engine.workers,
                lease_ms: engine.lease_ms as u64,
                poll_ms: engine.poll_ms,
            },
            scale_out: ScaleOut {
                heartbeat_ms: 1_000,
                lease_ms: 10_000,
            },
            snapshots: Snapshots {
                every_events: engine.snapshot_every_events,
            },
            telemetry: Telemetry {
                otlp_endpoint: None,
                service_name: "braid".to_string(),
            },
            llm: Llm::default(),
        }
    }
}

/// The flags shared by `braid serve` and `braid config`; each one, when
/// given, beats every other layer.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct Flags {
    /// TOML configuration file [default: ./braid.toml when present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// SQLite database file (store.db) [default: braid.db].
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// PostgreSQL URL (store.database_url): run on that database instead of a SQLite file.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Address to listen on (server.bind) [default: 127.0.0.1:8080].
    #[arg(long, value_name = "HOST:PORT")]
    pub bind: Option<String>,
    /// Largest request body in bytes (server.body_limit_bytes) [default: 10 MiB].
    #[arg(long, value_name = "BYTES")]
    pub body_limit_bytes: Option<usize>,
    /// Seconds to let in-flight actions finish at shutdown
    /// (server.shutdown_grace_s) [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub shutdown_grace_s: Option<u64>,
    /// Serve the web UI from this directory (a built web/dist) instead of
    /// the embedded copy (server.ui_dir) [development aid; default: embedded].
    #[arg(long, value_name = "DIR")]
    pub ui_dir: Option<PathBuf>,
    /// Another host name browsers may use to reach the server, `NAME` or
    /// `NAME:PORT`; repeatable (server.allowed_hosts) [default: none].
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// An origin whose pages may call the API, `http(s)://HOST[:PORT]`;
    /// repeatable (server.allowed_origins) [default: none].
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Actions in flight at once (executors.workers) [default: 512].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Task lease in milliseconds, renewed while an attempt runs
    /// (executors.lease_ms) [default: 30000].
    #[arg(long, value_name = "MS")]
    pub lease_ms: Option<u64>,
    /// Fallback poll interval for due tasks in milliseconds
    /// (executors.poll_ms) [default: 1000].
    #[arg(long, value_name = "MS")]
    pub poll_ms: Option<u64>,
    /// Heartbeat period of a process on PostgreSQL, in milliseconds
    /// (scale_out.heartbeat_ms) [default: 1000].
    #[arg(long, value_name = "MS")]
    pub heartbeat_ms: Option<u64>,
    /// How long a process on PostgreSQL may go unheard of before the others
    /// adopt its runs, in milliseconds (scale_out.lease_ms) [default: 10000].
    #[arg(long = "server-lease-ms", value_name = "MS")]
    pub server_lease_ms: Option<u64>,
    /// Events between run snapshots (snapshots.every_events) [default: 100].
    #[arg(long, value_name = "N")]
    pub snapshot_every_events: Option<u64>,
    /// Base URL of an OTLP/HTTP collector to export traces to
    /// (telemetry.otlp_endpoint) [default: OTEL_EXPORTER_OTLP_ENDPOINT, else off].
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of exported spans (telemetry.service_name) [default: braid].
    #[arg(long, value_name = "NAME")]
    pub service_name: Option<String>,
}

/// The effective configuration and, for every value, the layer it came from.
pub struct Effective {
    /// The values.
    pub config: Config,
    layers: Figment,
}

/// Loads and checks the configuration: `env` is the process environment
/// (passed in so that tests need not change their own).
pub fn load<I, K, V>(flags: &Flags, env: I) -> Result<Effective>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let env: Vec<(String, String)> = env
        .into_iter()
        .map(|(k, v)| {
            (
                k.as_ref().to_string_lossy().into_owned(),
                v.as_ref().to_string_lossy().into_owned(),
            )
        })
        .collect();
    let layers = layers::stack(flags, &env)?;
    let config = match layers.extract::<Config>() {
        Ok(config) => config,
        Err(errors) => bail!("{}", problems(errors.into_iter().map(layers::describe))),
    };
    let effective = Effective { config, layers };
    let issues = effective.range_problems();
    if !issues.is_empty() {
        bail!("{}", problems(issues.into_iter()));
    }
    Ok(effective)
}

/// One message for every problem found, so that a user fixes them in one go.
fn problems(list: impl Iterator<Item = String>) -> String {
    let list: Vec<String> = list.collect();
    match list.as_slice() {
        [one] => format!("invalid configuration: {one}"),
        _ => format!("invalid configuration:\n  {}", list.join("\n  ")),
    }
}

impl Effective {
    /// Where the value of `path` came from.
    pub fn source(&self, path: &str) -> Source {
        layers::source_of(&self.layers, path)
    }

    /// The store to open: the PostgreSQL database when `store.database_url`
    /// is set (`range_problems` refuses it beside a configured `store.db`),
    /// else the SQLite file.
    pub fn store(&self) -> StoreChoice<'_> {
        match &self.config.store.database_url {
            Some(url) => StoreChoice::Postgres(url),
            None => StoreChoice::Sqlite(&self.config.store.db),
        }
    }

    /// The engine's options: the configured tunables over its defaults.
    pub fn engine_options(&self) -> braid_runtime::Options {
        let c = &self.config;
        braid_runtime::Options {
            workers: c.executors.workers,
            // Bounded by `range_problems`, so the conversion cannot fail.
            lease_ms: i64::try_from(c.executors.lease_ms).unwrap_or(MAX_LEASE_MS as i64),
            poll_ms: c.executors.poll_ms,
            snapshot_every_events: c.snapshots.every_events,
            endpoint_limits: c
                .llm
                .endpoints
                .iter()
                .map(|e| braid_runtime::limits::EndpointLimit {
                    provider: e.provider.clone(),
                    base_url: e.base_url.clone(),
                    model: e.model.clone(),
                    limits: braid_runtime::limits::Declared {
                        max_concurrency: e.max_concurrency,
                        requests_per_minute: e.requests_per_minute,
                        tokens_per_minute: e.tokens_per_minute,
                    },
                })
                .collect(),
            ..braid_runtime::Options::default()
        }
    }

    /// Values of the right type that are still unusable: zero counts, a
    /// lease the task queue cannot add to a timestamp, an address without
    /// a port, two stores at once.
    fn range_problems(&self) -> Vec<String> {
        let c = &self.config;
        let counts: [(&str, u64, u64); 7] = [
            (
                "server.body_limit_bytes",
                c.server.body_limit_bytes as u64,
                u64::MAX,
            ),
            ("executors.workers", c.executors.workers as u64, u64::MAX),
            ("executors.lease_ms", c.executors.lease_ms, MAX_LEASE_MS),
            ("executors.poll_ms", c.executors.poll_ms, u64::MAX),
            ("snapshots.every_events", c.snapshots.every_events, u64::MAX),
            (
                "scale_out.heartbeat_ms",
                c.scale_out.heartbeat_ms,
                MAX_LEASE_MS,
            ),
            ("scale_out.lease_ms", c.scale_out.lease_ms, MAX_LEASE_MS),
        ];
        let mut issues = Vec::new();
        for (path, value, max) in counts {
            if value == 0 {
                issues.push(format!(
                    "{path}: invalid value 0 in {}: expected at least 1",
                    self.source(path)
                ));
            } else if value > max {
                issues.push(format!(
                    "{path}: invalid value {value} in {}: expected at most {max}",
                    self.source(path)
                ));
            }
        }
        let so = &c.scale_out;
        if so.heartbeat_ms > 0 && so.heartbeat_ms >= so.lease_ms {
            issues.push(format!(
                "scale_out.heartbeat_ms: invalid value {} in {}: expected less than \
                 scale_out.lease_ms ({}), or a live process would be taken for dead",
                so.heartbeat_ms,
                self.source("scale_out.heartbeat_ms"),
                so.lease_ms
            ));
        }
        let bind = &c.server.bind;
        let has_port = bind
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !has_port {
            issues.push(format!(
                "server.bind: invalid value {bind:?} in {}: expected HOST:PORT, e.g. 127.0.0.1:8080",
                self.source("server.bind")
            ));
        }
        if let Some(dir) = &c.server.ui_dir
            && !dir.join("index.html").is_file()
        {
            issues.push(format!(
                "server.ui_dir: invalid value {:?} in {}: expected a built web UI directory \
                 holding index.html (run `npm run build` in web/)",
                dir.display().to_string(),
                self.source("server.ui_dir")
            ));
        }
        issues.extend(self.access_problems());
        issues.extend(self.endpoint_problems());
        if let Some(url) = &c.telemetry.otlp_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            issues.push(format!(
                "telemetry.otlp_endpoint: invalid value {url:?} in {}: expected an http:// or https:// URL, e.g. http://localhost:4318",
                self.source("telemetry.otlp_endpoint")
            ));
        }
        let db_source = self.source("store.db");
        if c.store.database_url.is_some() && db_source != Source::Default {
            issues.push(format!(
                "store.db (from {db_source}) and store.database_url (from {}) are both set: \
                 a store is either a SQLite file or a database URL",
                self.source("store.database_url")
            ));
        }
        issues
    }
}

impl Effective {
    /// Origins that are not `http(s)://host[:port]`, hosts that are not
    /// `name[:port]`.
    fn access_problems(&self) -> Vec<String> {
        let server = &self.config.server;
        let bad_origins = server
            .allowed_origins
            .iter()
            .filter(|o| braid_server::normalize_origin(o).is_none())
            .map(|o| ("server.allowed_origins", o, "an origin such as https://braid.example.com or http://localhost:5173 (scheme, host and optional port; no path)"));
        let bad_hosts = server
            .allowed_hosts
            .iter()
            .filter(|h| braid_server::normalize_origin(&format!("http://{h}")).is_none())
            .map(|h| ("server.allowed_hosts", h, "a host name with an optional port, such as braid.example.com or box.lan:8080 (no scheme)"));
        bad_origins
            .chain(bad_hosts)
            .map(|(path, value, expected)| {
                format!(
                    "{path}: invalid value {value:?} in {}: expected {expected}",
                    self.source(path)
                )
            })
            .collect()
    }

    /// `[[llm.endpoints]]` tables naming no known provider or model, with
    /// a base URL that is not http(s), or with a zero or no limit.
    fn endpoint_problems(&self) -> Vec<String> {
        let source = self.source("llm.endpoints");
        let mut issues = Vec::new();
        for (i, e) in self.config.llm.endpoints.iter().enumerate() {
            let at = |field: &str| format!("llm.endpoints[{i}].{field}");
            if !["openai", "anthropic", "openai_compatible", "scripted"]
                .contains(&e.provider.as_str())
            {
                issues.push(format!(
                    "{}: invalid value {:?} in {source}: expected openai, anthropic, openai_compatible or scripted",
                    at("provider"),
                    e.provider
                ));
            }
            if e.model.is_empty() {
                issues.push(format!(
                    "{}: invalid value \"\" in {source}: expected the provider's model name",
                    at("model")
                ));
            }
            if let Some(url) = &e.base_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                issues.push(format!(
                    "{}: invalid value {url:?} in {source}: expected an http:// or https:// URL, as in the model profiles",
                    at("base_url")
                ));
            }
            let limits = [
                ("max_concurrency", e.max_concurrency),
                ("requests_per_minute", e.requests_per_minute),
                ("tokens_per_minute", e.tokens_per_minute),
            ];
            for (field, value) in limits {
                if value == Some(0) {
                    issues.push(format!(
                        "{}: invalid value 0 in {source}: expected at least 1",
                        at(field)
                    ));
                }
            }
            if limits.iter().all(|(_, v)| v.is_none()) {
                issues.push(format!(
                    "llm.endpoints[{i}] in {source} sets no limit: expected max_concurrency, requests_per_minute or tokens_per_minute"
                ));
            }
        }
        issues
    }

    /// What `braid serve` accepts from browsers.
    pub fn access(&self) -> braid_server::Access {
        braid_server::Access {
            bound: None,
            allowed_hosts: self.config.server.allowed_hosts.clone(),
            allowed_origins: self.config.server.allowed_origins.clone(),
        }
    }
}

/// A day: the task queue adds the lease to millisecond timestamps, and a
/// longer lease would only delay recovery after a crash.
const MAX_LEASE_MS: u64 = 86_400_000;
