//! `braid config`: the effective configuration, each value with its source,
//! secrets masked. The text form is itself a valid `braid.toml`.

use super::{Effective, KEYS};
use anyhow::Result;
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

/// A URL with its password (and any `password=` parameter) replaced by
/// `****`; anything that is not a URL is masked whole.
pub(crate) fn mask(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "****".to_string();
    };
    // The user info ends at the last '@' before the query: a password may
    // itself hold '@' or '/', and masking too much is the safe mistake.
    let before_query = rest.find('?').unwrap_or(rest.len());
    let (user_info, tail) = match rest[..before_query].rfind('@') {
        Some(at) => {
            let (user_info, host_and_tail) = rest.split_at(at);
            let user = match user_info.split_once(':') {
                Some((user, _password)) => format!("{user}:****"),
                None => user_info.to_string(),
            };
            (user, host_and_tail)
        }
        None => (String::new(), rest),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}=****")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{user_info}{tail}")
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn mask_hides_passwords_and_keeps_the_rest() {
        assert_eq!(
            mask("postgres://braid:s3cret@db.internal:5432/braid?sslmode=require"),
            "postgres://braid:****@db.internal:5432/braid?sslmode=require"
        );
        assert_eq!(
            mask("postgres://db/braid?user=u&password=s3cret"),
            "postgres://db/braid?user=u&password=****"
        );
        assert_eq!(
            mask("postgres://braid@db/braid"),
            "postgres://braid@db/braid"
        );
        // A password containing '@' or '/' before the host.
        assert_eq!(mask("postgres://u:p@ss@db/x"), "postgres://u:****@db/x");
        assert_eq!(mask("postgres://u:p/ss@db/x"), "postgres://u:****@db/x");
        assert_eq!(mask("not a url s3cret"), "****");
    }
}
