//! `braid config`: the effective configuration, each value with its source,
//! secrets masked. The text form is itself a valid `braid.toml`.

use super::{Effective, KEYS};
use anyhow::Result;
use braid_store_postgres::url::mask;
use serde_json::{Value, json};
use std::io::Write as _;

/// Prints `effective` on stdout: TOML with the source of each value as a
/// comment, or with `json` one object `{ "<key>": { value, source } }`
/// (`value` null when unset).
pub fn print(effective: &Effective, json: bool) -> Result<()> {
    let tree = serde_json::to_value(&effective.config)?;
    let mut out = std::io::stdout().lock();
    if json {
        let mut entries = serde_json::Map::new();
        for key in KEYS {
            let value = shown(key, lookup(&tree, key.path));
            let source = effective.source(key.path).to_string();
            entries.insert(
                key.path.to_string(),
                json!({ "value": value, "source": source }),
            );
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
        return Ok(());
    }
    let mut section = "";
    for key in KEYS.iter().filter(|k| !k.tables) {
        let (this_section, name) = key.path.split_once('.').expect("section.key");
        if this_section != section {
            if !section.is_empty() {
                writeln!(out)?;
            }
            writeln!(out, "[{this_section}]")?;
            section = this_section;
        }
        match shown(key, lookup(&tree, key.path)) {
            Value::Null => writeln!(out, "# {name} is not set")?,
            value => {
                let line = format!("{name} = {value}");
                writeln!(out, "{line:<40} # {}", effective.source(key.path))?;
            }
        }
    }
    for key in KEYS.iter().filter(|k| k.tables) {
        print_tables(&mut out, key.path, &lookup(&tree, key.path), effective)?;
    }
    Ok(())
}

/// `[[llm.endpoints]]` tables, or a comment saying there are none.
fn print_tables(
    out: &mut impl std::io::Write,
    path: &str,
    tables: &Value,
    effective: &Effective,
) -> Result<()> {
    let tables = tables.as_array().map(Vec::as_slice).unwrap_or_default();
    writeln!(out)?;
    if tables.is_empty() {
        writeln!(out, "# no [[{path}]] tables")?;
    }
    for (i, table) in tables.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let header = format!("[[{path}]]");
        writeln!(out, "{header:<40} # {}", effective.source(path))?;
        for (field, value) in table.as_object().into_iter().flatten() {
            writeln!(out, "{field} = {value}")?;
        }
    }
    Ok(())
}

fn lookup(tree: &Value, path: &str) -> Value {
    let pointer = format!("/{}", path.replace('.', "/"));
    tree.pointer(&pointer).cloned().unwrap_or(Value::Null)
}

fn shown(key: &super::Key, value: Value) -> Value {
    match (key.secret, value) {
        (true, Value::String(text)) => Value::String(mask(&text)),
        (_, value) => value,
    }
}
