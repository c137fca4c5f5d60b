//! `braid runs …`: inspecting runs on a server over its HTTP API.
//!
//! Answers are read into the API's own types (`braid-api`), the ones the
//! server writes, so a renamed field breaks the build rather than printing
//! blanks. `fork` and `compare` are in `remote/fork.rs`.

mod fork;

use anyhow::{Context as _, Result, bail};
use braid_api::{ErrorBody, Event, LiveFrame, Page, Run, RunSummary};
use clap::Subcommand;
use serde::de::DeserializeOwned;
use std::process::ExitCode;
use std::time::Duration;

/// How long a connection to the server may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `tail` waits before asking again when no new event has arrived
/// (over https, which the WebSocket client is built without).
const TAIL_POLL: Duration = Duration::from_millis(250);
/// How long `tail` waits before reconnecting a dropped live stream.
const TAIL_RECONNECT: Duration = Duration::from_millis(250);
/// Reconnections in a row without a single frame before `tail` gives up.
const TAIL_RECONNECTS: u32 = 40;
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
    /// Fork a run: a new run that copies its history up to a node or an
    /// event and goes on from there (on another version, or with changed
    /// prompts, models or actions).
    Fork {
        /// The source run.
        id: String,
        /// Fork just before the first visit of this node starts.
        #[arg(
            long,
            conflicts_with = "from_seq",
            required_unless_present = "from_seq"
        )]
        from_node: Option<String>,
        /// Fork after the last step boundary at or before this event.
        #[arg(long)]
        from_seq: Option<u64>,
        /// The version to go on with (default: the source run's).
        #[arg(long)]
        version: Option<i64>,
        /// A YAML or JSON file with `prompt_specs`, `model_profiles` and
        /// `actions` lists: each object replaces the one with its `ref`.
        #[arg(long)]
        changes: Option<std::path::PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Compare two runs of the same workflow, visit by visit.
    Compare {
        /// One run.
        a: String,
        /// The other run.
        b: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Follow a run's events until it ends (over the live WebSocket).
    Tail {
        /// Run id.
        id: String,
        /// Only events after this seq.
        #[arg(long, default_value_t = 0)]
        after: i64,
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
        RunsCmd::Fork {
            id,
            from_node,
            from_seq,
            version,
            changes,
            json,
        } => {
            let from = match (from_node, from_seq) {
                (Some(node), _) => braid_api::ForkFrom::Node { node },
                (None, Some(seq)) => braid_api::ForkFrom::Seq { seq },
                (None, None) => bail!("give --from-node or --from-seq"),
            };
            fork::fork(&api, &id, from, version, changes.as_deref(), json).await?;
        }
        RunsCmd::Compare { a, b, json } => fork::compare(&api, &a, &b, json).await?,
        RunsCmd::Tail { id, after, json } => match api.live_url(&id) {
            Some(url) => tail(&url, after, json).await?,
            None => poll_tail(&api, &id, after, json).await?,
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// Follows `/api/runs/{id}/live` from `after` until its `end` frame,
/// reconnecting from the last printed seq when the connection drops.
async fn tail(url: &str, mut after: i64, json: bool) -> Result<()> {
    let mut idle_reconnects = 0;
    loop {
        let printed_before = after;
        match follow(url, &mut after, json).await? {
            Followed::End => return Ok(()),
            Followed::Dropped(why) => {
                idle_reconnects = if after > printed_before {
                    0
                } else {
                    idle_reconnects + 1
                };
                if idle_reconnects > TAIL_RECONNECTS {
                    bail!("the live stream keeps failing: {why}");
                }
                eprintln!("the live stream dropped ({why}); reconnecting after seq {after}");
                tokio::time::sleep(TAIL_RECONNECT).await;
            }
        }
    }
}

/// How one connection of `tail` ended.
enum Followed {
    /// The run's `end` frame arrived.
    End,
    /// The connection failed or closed before `end`: worth reconnecting.
    Dropped(String),
}

/// One connection of `tail`: prints events after `*after`, moving it on.
/// A refused handshake (unknown run, bad `after`) is an error, not a drop.
async fn follow(url: &str, after: &mut i64, json: bool) -> Result<Followed> {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::{Error as WsError, Message};
    let target = format!("{url}?after={after}");
    let connecting =
        tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(&target));
    let mut socket = match connecting.await {
        Err(_) => return Ok(Followed::Dropped("connecting timed out".into())),
        Ok(Err(WsError::Http(resp))) => {
            let body = resp.body().as_deref().unwrap_or_default();
            match serde_json::from_slice::<ErrorBody>(body) {
                Ok(e) => bail!("{}: {}: {}", resp.status(), e.error.code, e.error.message),
                Err(_) => bail!("GET {target}: {}", resp.status()),
            }
        }
        Ok(Err(e)) => return Ok(Followed::Dropped(e.to_string())),
        Ok(Ok((socket, _))) => socket,
    };
    while let Some(msg) = socket.next().await {
        let text = match msg {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) => break,
            Ok(_) => continue,
            Err(e) => return Ok(Followed::Dropped(e.to_string())),
        };
        let frame: LiveFrame = serde_json::from_str(text.as_str())
            .with_context(|| format!("{target}: a frame this braid does not understand"))?;
        match frame {
            LiveFrame::Events { events } => {
                // A resent event (never expected) is not printed twice.
                for e in &events {
                    if e.seq > *after {
                        print_event(e, json)?;
                        *after = e.seq;
                    }
                }
            }
            LiveFrame::End { .. } => return Ok(Followed::End),
        }
    }
    Ok(Followed::Dropped("closed before the run's end".into()))
}

/// `tail` by polling the event log (servers reached over https).
async fn poll_tail(api: &Api, id: &str, mut after: i64, json: bool) -> Result<()> {
    loop {
        let page = api.events(id, after).await?;
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
            return Ok(());
        }
        if page.items.is_empty() {
            tokio::time::sleep(TAIL_POLL).await;
        }
    }
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

    /// The `ws://` address of a run's live stream; `None` over https (the
    /// WebSocket client is built without TLS).
    fn live_url(&self, id: &str) -> Option<String> {
        let rest = self.base.strip_prefix("http://")?;
        Some(format!("ws://{rest}/api/runs/{id}/live"))
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
        self.send(self.http.get(url.clone()), "GET", &url).await
    }

    /// `POST path` with a JSON body, read as `T`.
    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<T> {
        let url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .with_context(|| format!("{}{path} is not a URL", self.base))?;
        self.send(self.http.post(url.clone()).json(body), "POST", &url)
            .await
    }

    /// Sends a request; an error answer becomes its code and message.
    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        method: &str,
        url: &reqwest::Url,
    ) -> Result<T> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .with_context(|| format!("{method} {url}: reading the answer"))?;
        if !status.is_success() {
            match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(e) => bail!("{status}: {}: {}", e.error.code, e.error.message),
                Err(_) => bail!("{method} {url}: {status}"),
            }
        }
        serde_json::from_slice(&body)
            .with_context(|| format!("{method} {url}: the answer is not what this braid expects"))
    }
}
