//! `braid runs fork` and `braid runs compare`.

use super::Api;
use anyhow::{Context as _, Result, bail};
use braid_api::{ComparedVisit, ForkChanges, ForkCreated, ForkFrom, ForkRequest, RunComparison};
use braid_core::definition::{Syntax, parse_document};
use std::path::Path;

/// Forks run `id` and prints the new run's id and version.
pub(super) async fn fork(
    api: &Api,
    id: &str,
    from: ForkFrom,
    version: Option<i64>,
    changes: Option<&Path>,
    json: bool,
) -> Result<()> {
    let changes = changes.map(read_changes).transpose()?;
    let body = ForkRequest {
        from,
        changes,
        version,
    };
    let created: ForkCreated = api.post(&format!("/api/runs/{id}/fork"), &body).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&created)?);
    } else {
        println!("{}  v{}", created.run_id, created.version);
    }
    Ok(())
}

/// A changes file: YAML or JSON, read like a bundle, with only
/// `prompt_specs`, `model_profiles` and `actions`.
fn read_changes(path: &Path) -> Result<ForkChanges> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --changes {}", path.display()))?;
    let value = parse_document(&text, Syntax::sniff(&text))
        .map_err(|e| anyhow::anyhow!("--changes {}: {e}", path.display()))?;
    if !value.is_object() {
        bail!(
            "--changes {}: expected a mapping with prompt_specs, model_profiles or actions",
            path.display()
        );
    }
    serde_json::from_value(value).with_context(|| format!("--changes {}", path.display()))
}

/// Compares runs `a` and `b` and prints the table (or the JSON answer).
pub(super) async fn compare(api: &Api, a: &str, b: &str, json: bool) -> Result<()> {
    let cmp: RunComparison = api.get(&format!("/api/runs/{a}/compare/{b}"), &[]).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&cmp)?);
    } else {
        print!("{}", table(&cmp));
    }
    Ok(())
}

/// The comparison as a text table: one row per visit, a totals row, and
/// the first difference.
pub(super) fn table(cmp: &RunComparison) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:<10} {:<6} {:>10} {:>10} {:>12} {:>12}",
        "NODE", "BRANCH", "EQUAL", "MS A", "MS B", "COST A", "COST B"
    );
    for v in &cmp.visits {
        let _ = writeln!(
            out,
            "{:<20} {:<10} {:<6} {:>10} {:>10} {:>12} {:>12}",
            visit_name(v),
            branch(&v.branch),
            if v.equal { "yes" } else { "no" },
            side(v.a.as_ref().map(|s| s.duration_ms.to_string())),
            side(v.b.as_ref().map(|s| s.duration_ms.to_string())),
            side(v.a.as_ref().map(|s| cost(s.usage.cost_usd))),
            side(v.b.as_ref().map(|s| cost(s.usage.cost_usd))),
        );
    }
    let (ta, tb) = (&cmp.totals.a, &cmp.totals.b);
    let _ = writeln!(
        out,
        "{:<20} {:<10} {:<6} {:>10} {:>10} {:>12} {:>12}",
        "TOTAL",
        "",
        "",
        ta.duration_ms,
        tb.duration_ms,
        cost(ta.cost_usd),
        cost(tb.cost_usd)
    );
    let _ = match &cmp.first_difference {
        Some(d) => writeln!(
            out,
            "first difference: {} branch {} occurrence {}",
            d.node,
            branch(&d.branch),
            d.occurrence
        ),
        None => writeln!(out, "first difference: none"),
    };
    out
}

fn visit_name(v: &ComparedVisit) -> String {
    if v.occurrence == 0 {
        v.node.clone()
    } else {
        format!("{}#{}", v.node, v.occurrence)
    }
}

fn branch(path: &[u64]) -> String {
    if path.is_empty() {
        "-".into()
    } else {
        path.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }
}

fn side(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".into())
}

fn cost(usd: f64) -> String {
    format!("${usd:.6}")
}
