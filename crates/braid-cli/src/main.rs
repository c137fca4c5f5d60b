//! The `braid` command: serve, run, validate, demo (in-process, on an
//! embedded database), and inspect runs on a server (`remote`).

/// mimalloc: 10-15 % less wall time than glibc malloc on the fan-out
/// workloads (decisions.md, "mimalloc").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context as _, Result, bail};
use braid_core::definition::{Bundle, ParseError};
use braid_core::event::EventBody;
use braid_core::graph::DefinitionError;
use braid_runtime::{Engine, Options};
use braid_store_sqlite::SqliteStore;
use clap::{Parser, Subcommand};
use remote::RunsCmd;
use serde_json::Value;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod config;
mod remote;
mod serve;
mod telemetry;

const DEMO: &str = include_str!("../../../examples/demo.yaml");
const DEMO_INPUT: &str = r#"{"question": "Why do LLM pipelines need a durable workflow engine?"}"#;

#[derive(Parser)]
#[command(
    name = "braid",
    version,
    about = "Braid: a durable workflow engine for AI pipelines"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server (HTTP API and executors) on an embedded SQLite file or a PostgreSQL database.
    ///
    /// Configured by defaults, a TOML file, BRAID_<SECTION>__<KEY> variables
    /// and these flags, later beating earlier (docs/configuration.md).
    Serve {
        #[command(flatten)]
        flags: config::Flags,
    },
    /// Print the effective configuration of `braid serve`, each value with
    /// its source (secrets masked).
    Config {
        #[command(flatten)]
        flags: config::Flags,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run a workflow file in-process and print its output as JSON.
    Run {
        /// Workflow bundle (JSON or YAML).
        file: PathBuf,
        /// Input: inline JSON or @file.
        #[arg(long, default_value = "{}")]
        input: String,
        /// Keep the run in this SQLite file (default: a temporary one).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Print the whole run (status, context, usage) instead of the output.
        #[arg(long)]
        json: bool,
    },
    /// Check a workflow file; prints every problem.
    Validate {
        /// Workflow bundle (JSON or YAML).
        file: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run the bundled demo (scripted model: no API key needed).
    Demo {
        /// Print the whole run instead of the output.
        #[arg(long)]
        json: bool,
    },
    /// Inspect runs on a server.
    Runs {
        /// Server address.
        #[arg(
            long,
            default_value = "http://127.0.0.1:8080",
            env = "BRAID_SERVER",
            global = true
        )]
        server: String,
        #[command(subcommand)]
        command: RunsCmd,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BRAID_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::Serve { flags } => serve::serve(&config::load(&flags, std::env::vars_os())?).await,
        Cmd::Config { flags, json } => {
            config::print(&config::load(&flags, std::env::vars_os())?, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run {
            file,
            input,
            db,
            json,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let input = read_input(&input)?;
            run_local(&text, input, db.as_deref(), json).await
        }
        Cmd::Validate { file, json } => validate(&file, json).await,
        Cmd::Demo { json } => run_local(DEMO, serde_json::from_str(DEMO_INPUT)?, None, json).await,
        Cmd::Runs { server, command } => remote::runs(&server, command).await,
    }
}

fn read_input(arg: &str) -> Result<Value> {
    let text = match arg.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading input file {path}"))?
        }
        None => arg.to_string(),
    };
    serde_json::from_str(&text).context("--input is not valid JSON")
}

/// Locks `<db>.lock` for the life of the process. The engine owns the file
/// alone (`Options::exclusive`): at start-up it releases every task lease and
/// adopts every live run, which would break a process already serving it.
fn lock_database(db: &Path) -> Result<()> {
    let path = PathBuf::from(format!("{}.lock", db.display()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            // Held until the process exits (the OS releases it even after SIGKILL).
            std::mem::forget(file);
            Ok(())
        }
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "database {} is in use by another braid process (lock file {}); stop it first",
            db.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

async fn open_engine(db: &Path, workers: usize, lease_ms: i64) -> Result<Engine> {
    lock_database(db)?;
    let store = SqliteStore::open_path(db)
        .await
        .with_context(|| format!("opening database {}", db.display()))?;
    let opts = Options {
        workers,
        lease_ms,
        ..Options::default()
    };
    Ok(Engine::start(Arc::new(store), opts).await?)
}

fn print_definition_errors(errors: &[DefinitionError]) {
    eprintln!(
        "the workflow is invalid ({} problem{}):",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        eprintln!(
            "  {} `{}`, field `{}`: {}",
            e.kind, e.ref_, e.field, e.message
        );
    }
}

/// Reports the problems of an invalid bundle (shape or validation alike) and
/// answers `validate`'s exit code for it.
fn report_invalid(errors: &[DefinitionError], json: bool) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::json!({ "valid": false, "errors": errors })
        );
    } else {
        print_definition_errors(errors);
    }
    ExitCode::from(1)
}

async fn validate(file: &Path, json: bool) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let bundle = match Bundle::parse(&text) {
        Ok(b) => b,
        Err(ParseError::Shape(problems)) => return Ok(report_invalid(&problems, json)),
        Err(ParseError::Malformed(message)) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "valid": false, "error": message })
                );
            } else {
                eprintln!("{message}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    let dir = tempdir()?;
    let engine = open_engine(&dir.join("validate.db"), 1, 30_000).await?;
    let project = engine.store().project_id("default").await?;
    let result = engine.validate(&project, &bundle).await;
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(warnings) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "valid": true, "warnings": warnings })
                );
            } else {
                println!("{}: valid", file.display());
                for w in &warnings {
                    eprintln!(
                        "warning: {} `{}`, field `{}`: {}",
                        w.kind, w.ref_, w.field, w.message
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(braid_runtime::Error::InvalidDefinition(errors)) => Ok(report_invalid(&errors, json)),
        Err(e) => Err(e.into()),
    }
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("braid-{}-{}", std::process::id(), uuid_like()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Runs a bundle in-process: save, start, show progress on stderr, print the output.
async fn run_local(text: &str, input: Value, db: Option<&Path>, json: bool) -> Result<ExitCode> {
    let bundle = match Bundle::parse(text) {
        Ok(b) => b,
        Err(ParseError::Shape(problems)) => {
            print_definition_errors(&problems);
            return Ok(ExitCode::from(2));
        }
        Err(e @ ParseError::Malformed(_)) => bail!(e),
    };
    let tmp = match db {
        Some(_) => None,
        None => Some(tempdir()?),
    };
    let db_path = match (db, &tmp) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(dir)) => dir.join("run.db"),
        (None, None) => unreachable!(),
    };
    let result = run_in(&db_path, &bundle, input, json).await;
    if let Some(dir) = tmp {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

async fn run_in(db: &Path, bundle: &Bundle, input: Value, json: bool) -> Result<ExitCode> {
    let engine = open_engine(db, 512, 30_000).await?;
    let project = engine.store().project_id("default").await?;
    match engine.save_definition(&project, bundle).await {
        Ok(_) => {}
        Err(braid_runtime::Error::InvalidDefinition(errors)) => {
            print_definition_errors(&errors);
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    }
    let mut events = engine.subscribe();
    let started = Instant::now();
    let run_id = match engine
        .start_run(&project, &bundle.name, None, input, None)
        .await
    {
        Ok(id) => id,
        Err(braid_runtime::Error::InputSchema { message, errors }) => {
            eprintln!("{message}");
            for e in errors {
                eprintln!(
                    "  {}: {}",
                    e["path"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                );
            }
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let progress = std::io::stderr().is_terminal() || std::env::var_os("BRAID_PROGRESS").is_some();
    eprintln!("run {run_id} of {} v1", bundle.name);
    let watcher = {
        let run_id = run_id.clone();
        tokio::spawn(async move {
            while let Ok(p) = events.recv().await {
                if p.run_id != run_id {
                    continue;
                }
                for e in p.events.iter() {
                    let node = e.node.as_deref().unwrap_or("");
                    let line = match &e.body {
                        EventBody::NodeCompleted {
                            duration_ms,
                            usage,
                            attempt,
                            ..
                        } => Some(match usage {
                            Some(u) => format!(
                                "  ✓ {node} ({duration_ms} ms, attempt {attempt}, {} → {} tokens, ${:.6})",
                                u.input_tokens, u.output_tokens, u.cost_usd
                            ),
                            None => format!("  ✓ {node}"),
                        }),
                        EventBody::NodeRetrying {
                            attempt,
                            error,
                            delay_ms,
                            ..
                        } => Some(format!(
                            "  ↻ {node} attempt {attempt} failed ({}: {}); retrying in {delay_ms} ms",
                            error.code, error.message
                        )),
                        EventBody::NodeFailed { error, .. } => {
                            Some(format!("  ✗ {node}: {}: {}", error.code, error.message))
                        }
                        EventBody::ArtifactCreated {
                            artifact_id, name, ..
                        } => Some(format!("  ▣ artifact {name} = {artifact_id}")),
                        _ => None,
                    };
                    if let Some(l) = line
                        && progress
                    {
                        eprintln!("{l}");
                    }
                    if e.body.is_final() {
                        return;
                    }
                }
            }
        })
    };
    let record = engine
        .wait(&run_id, Duration::from_secs(24 * 3600))
        .await?
        .context("the run disappeared")?;
    let _ = tokio::time::timeout(Duration::from_millis(200), watcher).await;
    let elapsed = started.elapsed();
    let status = record.status.as_str();
    eprintln!("run {status} in {:.1} ms", elapsed.as_secs_f64() * 1000.0);
    let mut out = std::io::stdout().lock();
    if json {
        let body = serde_json::json!({
            "id": record.id, "status": status, "context": record.context, "error": record.error, "usage": record.usage,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
    } else if record.status == braid_store::RunStatus::Completed {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&record.context["output"])?
        )?;
    }
    if let Some(err) = &record.error {
        eprintln!(
            "error: {}: {}",
            err["code"].as_str().unwrap_or("?"),
            err["message"].as_str().unwrap_or("")
        );
    }
    Ok(match record.status {
        braid_store::RunStatus::Completed => ExitCode::SUCCESS,
        braid_store::RunStatus::Cancelled => ExitCode::from(3),
        _ => ExitCode::from(1),
    })
}
