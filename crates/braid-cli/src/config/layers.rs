//! The layers of the configuration and the names of their sources. figment
//! merges the layers and tags every value with the layer it came from; this
//! module builds the layers, rejects unknown keys before they are merged
//! (so the message names the file or the variable, not the merged tree),
//! and turns a tag back into a [`Source`] a user can act on.

use super::{Config, DEFAULT_FILE, ENDPOINT_FIELDS, Flags, KEYS, Key, problems};
use anyhow::{Result, anyhow, bail};
use figment::error::{Actual, Kind};
use figment::providers::{Format as _, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use std::fmt;
use std::path::{Path, PathBuf};

// The names figment tags each layer's values with (`Metadata::name`).
const DEFAULTS: &str = "built-in defaults";
const FILE: &str = "configuration file";
const ENVIRONMENT: &str = "BRAID_<SECTION>__<KEY> environment variables";
const FLAGS: &str = "command-line flags";
const DATABASE_URL: &str = "DATABASE_URL environment variable";
const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT environment variable";

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The TOML file at this path (as given, or `braid.toml`).
    File(PathBuf),
    /// This `BRAID_<SECTION>__<KEY>` variable.
    Env(String),
    /// This flag.
    Flag(&'static str),
    /// The conventional `DATABASE_URL` variable.
    DatabaseUrl,
    /// OpenTelemetry's standard `OTEL_EXPORTER_OTLP_ENDPOINT` variable.
    OtlpEndpoint,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Env(name) => write!(f, "{name} environment variable"),
            Source::Flag(flag) => write!(f, "{flag} flag"),
            Source::DatabaseUrl => f.write_str(DATABASE_URL),
            Source::OtlpEndpoint => f.write_str(OTLP_ENDPOINT),
        }
    }
}

/// A layer: a tree of values and the metadata figment tags them with.
struct Layer {
    name: &'static str,
    file: Option<PathBuf>,
    dict: Dict,
}

impl Layer {
    fn new(name: &'static str) -> Layer {
        Layer {
            name,
            file: None,
            dict: Dict::new(),
        }
    }

    /// Sets `section.key` (every key has exactly two levels).
    fn set(&mut self, path: &str, value: Value) {
        let (section, key) = path.split_once('.').expect("a key is section.key");
        let section = self
            .dict
            .entry(section.to_string())
            .or_insert_with(|| Value::from(Dict::new()));
        if let Value::Dict(_, keys) = section {
            keys.insert(key.to_string(), value);
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let metadata = Metadata::named(self.name);
        match &self.file {
            Some(path) => metadata.source(path.as_path()),
            None => metadata,
        }
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// Every layer merged in order of precedence. Unknown keys, a missing
/// `--config` file and malformed TOML are errors here; values are typed
/// later, by extracting a [`Config`].
pub(super) fn stack(flags: &Flags, env: &[(String, String)]) -> Result<Figment> {
    let defaults = Value::serialize(Config::default())
        .ok()
        .and_then(|v| v.into_dict())
        .expect("the defaults serialize to a table");
    let mut figment = Figment::from(Layer {
        dict: defaults,
        ..Layer::new(DEFAULTS)
    });
    let mut unknown = Vec::new();
    if let Some(file) = file_layer(flags.config.as_deref(), &mut unknown)? {
        figment = figment.merge(file);
    }
    figment = figment.merge(env_layer(env, &mut unknown));
    if !unknown.is_empty() {
        bail!("{}", problems(unknown.into_iter()));
    }
    figment = figment.merge(flag_layer(flags));
    let names_a_store = ["store.db", "store.database_url"].iter().any(|path| {
        figment
            .find_metadata(path)
            .is_some_and(|m| m.name != DEFAULTS)
    });
    let database_url = env
        .iter()
        .find(|(name, value)| name == "DATABASE_URL" && !value.is_empty());
    if let (false, Some((_, url))) = (names_a_store, database_url) {
        let mut layer = Layer::new(DATABASE_URL);
        layer.set("store.database_url", Value::from(url.clone()));
        figment = figment.merge(layer);
    }
    // OpenTelemetry's own variable, beneath every layer that names the key.
    let names_an_endpoint = figment
        .find_metadata("telemetry.otlp_endpoint")
        .is_some_and(|m| m.name != DEFAULTS);
    let otlp = env
        .iter()
        .find(|(name, value)| name == "OTEL_EXPORTER_OTLP_ENDPOINT" && !value.is_empty());
    if let (false, Some((_, url))) = (names_an_endpoint, otlp) {
        let mut layer = Layer::new(OTLP_ENDPOINT);
        layer.set("telemetry.otlp_endpoint", Value::from(url.clone()));
        figment = figment.merge(layer);
    }
    Ok(figment)
}

/// The TOML file: `--config` (which must exist), else `./braid.toml` if
/// there is one.
fn file_layer(given: Option<&Path>, unknown: &mut Vec<String>) -> Result<Option<Layer>> {
    let path = match given {
        Some(path) if !path.is_file() => bail!(
            "configuration file {} (--config) does not exist or is not a file",
            path.display()
        ),
        Some(path) => path.to_path_buf(),
        None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
        None => return Ok(None),
    };
    // `file_exact`: `Toml::file` would also search parent folders.
    let data = Toml::file_exact(&path)
        .data()
        .map_err(|e| anyhow!("{}: {}", path.display(), e.kind))?;
    let dict = data.into_values().next().unwrap_or_default();
    let source = Source::File(path.clone());
    for (section, value) in &dict {
        match value {
            Value::Dict(_, keys) => {
                for (key, value) in keys {
                    let path = format!("{section}.{key}");
                    match Key::find(&path) {
                        None => unknown.push(unknown_key(&path, &source)),
                        Some(k) if k.tables => table_problems(&path, value, &source, unknown),
                        Some(_) => {}
                    }
                }
            }
            _ if is_section(section) => unknown.push(format!(
                "{section}: expected a table ([{section}]) in {source}, found a single value"
            )),
            _ => unknown.push(unknown_key(section, &source)),
        }
    }
    Ok(Some(Layer {
        file: Some(path),
        dict,
        ..Layer::new(FILE)
    }))
}

/// The `BRAID_<SECTION>__<KEY>` variables; every other variable, `BRAID_*`
/// ones included (`BRAID_SERVER`, `BRAID_LOG`, …), is not configuration.
fn env_layer(env: &[(String, String)], unknown: &mut Vec<String>) -> Layer {
    let mut layer = Layer::new(ENVIRONMENT);
    for (name, text) in env {
        let Some(path) = config_path(name) else {
            continue;
        };
        let Some(key) = Key::find(&path) else {
            unknown.push(unknown_key(&path, &Source::Env(name.clone())));
            continue;
        };
        if key.tables {
            unknown.push(format!(
                "{path} is a list of tables ([[{path}]]) and is set in the configuration file only, not by the {name} environment variable"
            ));
            continue;
        }
        let value = match key.text {
            true if key.list => Value::from(
                text.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(String::from)
                    .collect::<Vec<String>>(),
            ),
            true => Value::from(text.clone()),
            // Numbers arrive as text; figment's parse makes "512" a number
            // and leaves "abc" a string for the type check to name.
            false => text.parse().expect("parsing a value from text never fails"),
        };
        layer.set(key.path, value);
    }
    layer
}

/// `BRAID_SERVER__BIND` -> `server.bind`; `None` for a variable that is
/// not of the `BRAID_<SECTION>__<KEY>` form.
fn config_path(name: &str) -> Option<String> {
    let rest = name.strip_prefix("BRAID_")?;
    let parts: Vec<&str> = rest.split("__").collect();
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(parts.join(".").to_ascii_lowercase())
}

fn flag_layer(flags: &Flags) -> Layer {
    let mut layer = Layer::new(FLAGS);
    let list = |items: &Vec<String>| (!items.is_empty()).then(|| Value::from(items.clone()));
    let given: [(&str, Option<Value>); 16] = [
        (
            "store.db",
            flags
                .db
                .as_ref()
                .map(|p| Value::from(p.to_string_lossy().into_owned())),
        ),
        (
            "store.database_url",
            flags.database_url.clone().map(Value::from),
        ),
        ("server.bind", flags.bind.clone().map(Value::from)),
        (
            "server.body_limit_bytes",
            flags.body_limit_bytes.map(|n| Value::from(n as u64)),
        ),
        (
            "server.shutdown_grace_s",
            flags.shutdown_grace_s.map(Value::from),
        ),
        (
            "server.ui_dir",
            flags
                .ui_dir
                .as_ref()
                .map(|p| Value::from(p.to_string_lossy().into_owned())),
        ),
        ("server.allowed_hosts", list(&flags.allowed_hosts)),
        ("server.allowed_origins", list(&flags.allowed_origins)),
        (
            "executors.workers",
            flags.workers.map(|n| Value::from(n as u64)),
        ),
        ("executors.lease_ms", flags.lease_ms.map(Value::from)),
        ("executors.poll_ms", flags.poll_ms.map(Value::from)),
        (
            "scale_out.heartbeat_ms",
            flags.heartbeat_ms.map(Value::from),
        ),
        ("scale_out.lease_ms", flags.server_lease_ms.map(Value::from)),
        (
            "snapshots.every_events",
            flags.snapshot_every_events.map(Value::from),
        ),
        (
            "telemetry.otlp_endpoint",
            flags.otlp_endpoint.clone().map(Value::from),
        ),
        (
            "telemetry.service_name",
            flags.service_name.clone().map(Value::from),
        ),
    ];
    for (path, value) in given {
        if let Some(value) = value {
            layer.set(path, value);
        }
    }
    layer
}

/// The tables of an array-of-tables key (`[[llm.endpoints]]`): each must be
/// a table of known fields. Their values are typed when the tree is extracted.
fn table_problems(path: &str, value: &Value, source: &Source, problems: &mut Vec<String>) {
    let Value::Array(_, items) = value else {
        problems.push(format!(
            "{path}: expected a list of tables ([[{path}]]) in {source}, found a single value"
        ));
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let Value::Dict(_, fields) = item else {
            problems.push(format!("{path}[{i}]: expected a table in {source}"));
            continue;
        };
        for field in fields.keys() {
            if !ENDPOINT_FIELDS.contains(&field.as_str()) {
                problems.push(format!(
                    "unknown key \"{path}[{i}].{field}\" in {source} (the keys of [[{path}]] are {})",
                    ENDPOINT_FIELDS.join(", ")
                ));
            }
        }
    }
}

fn is_section(name: &str) -> bool {
    KEYS.iter()
        .any(|k| k.path.split_once('.').unwrap().0 == name)
}

/// `unknown key "server.bnd" in braid.toml`, with the keys the user may
/// have meant.
fn unknown_key(path: &str, source: &Source) -> String {
    let (section, name) = path.split_once('.').unwrap_or(("", path));
    let siblings: Vec<&str> = KEYS
        .iter()
        .filter_map(|k| k.path.strip_prefix(section)?.strip_prefix('.'))
        .collect();
    let hint = if let Some(key) = KEYS.iter().find(|k| k.path.ends_with(&format!(".{name}"))) {
        format!("did you mean {}?", key.path)
    } else if !siblings.is_empty() {
        format!("the keys of [{section}] are {}", siblings.join(", "))
    } else {
        let mut sections: Vec<&str> = KEYS
            .iter()
            .map(|k| k.path.split_once('.').unwrap().0)
            .collect();
        sections.dedup();
        format!("the sections are {}", sections.join(", "))
    };
    format!("unknown key \"{path}\" in {source} ({hint})")
}

/// Where the value at `path` came from; an unset value is a default.
pub(super) fn source_of(figment: &Figment, path: &str) -> Source {
    figment
        .find_metadata(path)
        .map_or(Source::Default, |m| source_from(m, path))
}

fn source_from(metadata: &Metadata, path: &str) -> Source {
    match &*metadata.name {
        FILE => match &metadata.source {
            Some(figment::Source::File(file)) => Source::File(file.clone()),
            _ => Source::File(PathBuf::from(DEFAULT_FILE)),
        },
        ENVIRONMENT => Source::Env(format!(
            "BRAID_{}",
            path.replace('.', "__").to_ascii_uppercase()
        )),
        FLAGS => Source::Flag(Key::find(path).map_or("--?", |k| k.flag)),
        DATABASE_URL => Source::DatabaseUrl,
        OTLP_ENDPOINT => Source::OtlpEndpoint,
        _ => Source::Default,
    }
}

/// One type error of the merged tree as `key: invalid value … in SOURCE:
/// expected …`.
pub(super) fn describe(error: figment::Error) -> String {
    // `llm.endpoints.0.model` is written `llm.endpoints[0].model`.
    let path = error.path.iter().fold(String::new(), |path, part| {
        if part.parse::<usize>().is_ok() {
            format!("{path}[{part}]")
        } else if path.is_empty() {
            part.clone()
        } else {
            format!("{path}.{part}")
        }
    });
    let source = error
        .metadata
        .as_ref()
        .map(|m| format!(" in {}", source_from(m, &path)))
        .unwrap_or_default();
    match &error.kind {
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            let actual = match actual {
                Actual::Str(text) => format!("{text:?}"),
                Actual::Unsigned(n) => n.to_string(),
                Actual::Signed(n) => n.to_string(),
                Actual::Float(n) => n.to_string(),
                Actual::Bool(b) => b.to_string(),
                other => other.to_string(),
            };
            format!(
                "{path}: invalid value {actual}{source}: expected {}",
                plain(expected)
            )
        }
        other => format!("{path}: {other}{source}"),
    }
}

/// serde's expectation in words: `usize` -> "a whole number ≥ 0".
fn plain(expected: &str) -> &str {
    match expected {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a whole number ≥ 0",
        "a string" | "path string" => "a string",
        other => other,
    }
}
