//! `braid runs …`: inspecting runs on a server over its HTTP API.
//!
//! Answers are read into the API's own types (`braid-api`), the ones the
//! server writes, so a renamed field breaks the build rather than printing
//! blanks.

use anyhow::{Context as _, Result, bail};
use braid_api::{ErrorBody, Event, Page, Run, RunSummary};
use clap::Subcommand;
use serde::de::DeserializeOwned;
use std::process::ExitCode;
use std::time::Duration;

/// How long a connection to the server may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `tail` waits before asking again when no new event has arrived.
const TAIL_POLL: Duration = Duration::from_millis(250);
/// Events asked for per page.
const EVENTS_PAGE: u32 = 1000;

#[derive(Subcommand)]
pub enum RunsCmd {
    /// List runs.
    List {
        /// Filter by status.
        #[arg(long)]
        status: Option<String>,
        /// Filter by workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Most runs to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show one run.
    Show {
        /// Run id.
        id: String,
    },
    /// Print a run's events.
    Events {
        /// Run id.
        id: String,
        /// Only events after this seq.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Machine-readable output (one JSON object per line).
        #[arg(long)]
        json: bool,
    },
    /// Follow a run's events until it ends.
    Tail {
        /// Run id.
        id: String,
        /// Machine-readable output (one JSON object per line).
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `braid runs` command against the server at `server`.
pub async fn runs(server: &str, cmd: RunsCmd) -> Result<ExitCode> {
    let api = Api::new(server)?;
    match cmd {
        RunsCmd::List {
            status,
            workflow,
            limit,
            json,
        } => {
            let limit = limit.to_string();
            let mut query = vec![("limit", limit.as_str())];
            query.extend(status.as_deref().map(|s| ("status", s)));
            query.extend(workflow.as_deref().map(|w| ("workflow", w)));
            let page: Page<RunSummary> = api.get("/api/runs", &query).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
                return Ok(ExitCode::SUCCESS);
            }
            for r in &page.items {
                println!(
                    "{}  {:<10} {} v{}  {}",
                    r.id,
                    r.status.as_str(),
                    r.workflow.name,
                    r.workflow.version,
                    r.created_at
                );
            }
        }
        RunsCmd::Show { id } => {
            let run: Run = api.get(&format!("/api/runs/{id}"), &[]).await?;
            println!("{}", serde_json::to_string_pretty(&run)?);
        }
        RunsCmd::Events { id, after, json } => {
            let mut after = after;
            loop {
                let page = api.events(&id, after).await?;
                for e in &page.items {
                    print_event(e, json)?;
                    after = e.seq;
                }
                if page.next_cursor.is_none() || page.items.is_empty() {
                    break;
                }
            }
        }
        RunsCmd::Tail { id, json } => {
            let mut after = 0;
            loop {
                let page = api.events(&id, after).await?;
                let mut ended = false;
                for e in &page.items {
                    print_event(e, json)?;
                    after = e.seq;
                    ended |= matches!(
                        e.kind.as_str(),
                        "workflow_completed" | "workflow_failed" | "workflow_cancelled"
                    );
                }
                if ended {
                    break;
                }
                if page.items.is_empty() {
                    tokio::time::sleep(TAIL_POLL).await;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_event(e: &Event, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(e)?);
    } else {
        println!(
            "{:>5} {} {:<20} {:<14} {}",
            e.seq,
            e.ts,
            e.kind,
            e.node.as_deref().unwrap_or(""),
            e.payload
        );
    }
    Ok(())
}

/// A client of one server.
struct Api {
    http: reqwest::Client,
    /// The server's address without a trailing `/`.
    base: String,
}

impl Api {
    fn new(server: &str) -> Result<Api> {
        let base = server.trim_end_matches('/').to_string();
        reqwest::Url::parse(&base).with_context(|| format!("--server {server:?} is not a URL"))?;
        // reqwest is built without a TLS crypto provider (see
        // docs/decisions.md): ring, as everywhere else, for https servers.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("braid-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Api { http, base })
    }

    /// One page of a run's events after `after`.
    async fn events(&self, id: &str, after: i64) -> Result<Page<Event>> {
        let after = after.to_string();
        let limit = EVENTS_PAGE.to_string();
        let query = [("after", after.as_str()), ("limit", limit.as_str())];
        self.get(&format!("/api/runs/{id}/events"), &query).await
    }

    /// `GET path?query`, read as `T`; an error answer becomes its message.
    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .with_context(|| format!("{}{path} is not a URL", self.base))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let resp = self
            .http
            .get(url.clone())
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .with_context(|| format!("GET {url}: reading the answer"))?;
        if !status.is_success() {
            match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(e) => bail!("{status}: {}: {}", e.error.code, e.error.message),
                Err(_) => bail!("GET {url}: {status}"),
            }
        }
        serde_json::from_slice(&body)
            .with_context(|| format!("GET {url}: the answer is not what this braid expects"))
    }
}
