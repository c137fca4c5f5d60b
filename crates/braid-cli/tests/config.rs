//! The configuration of `braid serve` (SPEC §9) through the real binary:
//! layering (defaults < file < environment < flags) as `braid config`
//! reports it, errors that name the key and its source, the `DATABASE_URL`
//! rule, and `braid serve` refusing a bad configuration or applying a good
//! one.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// `braid ARGS` in `dir`, with exactly the given configuration variables:
/// whatever `BRAID_*`, `DATABASE_URL` or `OTEL_*` the test runner has is removed.
fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_braid"));
    cmd.args(args).current_dir(dir);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("BRAID_") || text == "DATABASE_URL" || text.starts_with("OTEL_") {
            cmd.env_remove(&name);
        }
    }
    cmd.envs(env.iter().copied());
    cmd
}

fn braid(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(dir, args, env).output().expect("braid runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `braid config --json ARGS`: `{ key: { value, source } }`.
fn effective(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let o = braid(dir, &[&["config", "--json"], args].concat(), env);
    assert!(o.status.success(), "braid config failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("braid config --json prints JSON")
}

/// Asserts one key's value and source.
fn assert_key(config: &serde_json::Value, key: &str, value: serde_json::Value, source: &str) {
    assert_eq!(config[key]["value"], value, "value of {key}: {config:#}");
    assert_eq!(config[key]["source"], source, "source of {key}: {config:#}");
}

#[test]
fn layers_beat_each_other_in_order_and_each_value_names_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("braid.toml"),
        "[server]\nbind = \"0.0.0.0:9000\"\n\n[executors]\nworkers = 8\nlease_ms = 1000\npoll_ms = 250\n\n[snapshots]\nevery_events = 7\n",
    )
    .unwrap();
    let env = [
        ("BRAID_EXECUTORS__WORKERS", "16"),
        ("BRAID_EXECUTORS__LEASE_MS", "2000"),
        // Not of the BRAID_<SECTION>__<KEY> form: not configuration, and
        // no reason to fail.
        ("BRAID_SERVER", "http://elsewhere:1"),
        ("BRAID_PROGRESS", "1"),
        ("BRAID_SOMETHING", "x"),
        ("BRAID_DB", "old-name.db"),
    ];
    let flags = ["--lease-ms", "5000", "--db", "flag.db"];
    let config = effective(d, &flags, &env);
    assert_key(&config, "store.db", "flag.db".into(), "--db flag");
    assert_key(
        &config,
        "store.database_url",
        serde_json::Value::Null,
        "default",
    );
    assert_key(&config, "server.bind", "0.0.0.0:9000".into(), "braid.toml");
    assert_key(
        &config,
        "server.body_limit_bytes",
        10_485_760.into(),
        "default",
    );
    assert_key(&config, "server.shutdown_grace_s", 30.into(), "default");
    assert_key(&config, "server.ui_dir", serde_json::Value::Null, "default");
    assert_key(
        &config,
        "executors.workers",
        16.into(),
        "BRAID_EXECUTORS__WORKERS environment variable",
    );
    assert_key(
        &config,
        "executors.lease_ms",
        5000.into(),
        "--lease-ms flag",
    );
    assert_key(&config, "executors.poll_ms", 250.into(), "braid.toml");
    assert_key(&config, "snapshots.every_events", 7.into(), "braid.toml");
    assert_key(
        &config,
        "server.allowed_origins",
        serde_json::json!([]),
        "default",
    );
    assert_key(&config, "llm.endpoints", serde_json::json!([]), "default");
    assert_eq!(config.as_object().unwrap().len(), 17, "{config:#}");

    // The text form: a TOML file with each value's source beside it.
    let o = braid(d, &[&["config"][..], &flags].concat(), &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let workers = text.lines().find(|l| l.starts_with("workers = ")).unwrap();
    assert!(
        workers.starts_with("workers = 16 ")
            && workers.ends_with("# BRAID_EXECUTORS__WORKERS environment variable"),
        "{text}"
    );
    assert!(text.contains("[executors]") && text.contains("# database_url is not set"));

    // --config replaces ./braid.toml rather than adding to it.
    std::fs::write(d.join("other.toml"), "[executors]\npoll_ms = 40\n").unwrap();
    let config = effective(d, &["--config", "other.toml"], &[]);
    assert_key(&config, "executors.poll_ms", 40.into(), "other.toml");
    assert_key(&config, "server.bind", "127.0.0.1:8080".into(), "default");
    assert_key(&config, "executors.workers", 512.into(), "default");

    // A --config file that does not exist is an error, not an empty layer.
    let o = braid(d, &["config", "--config", "missing.toml"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("missing.toml (--config) does not exist"),
        "{}",
        stderr(&o)
    );
}

/// A bad configuration: `braid.toml`, the environment, and parts of the
/// expected error message.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn a_bad_configuration_names_the_key_and_its_source_and_stops_serve_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let serve = ["serve", "--db", "serve.db", "--bind", "127.0.0.1:0"];
    let cases: [Case; 8] = [
        (
            "[server]\nallowed_origins = [\"http://ok.example\", \"evil.example/x\"]\n",
            &[],
            &[
                "server.allowed_origins: invalid value \"evil.example/x\" in braid.toml: expected an origin",
            ],
        ),
        (
            "",
            &[("BRAID_SERVER__ALLOWED_HOSTS", "ok.lan,http://x.lan")],
            &[
                "server.allowed_hosts: invalid value \"http://x.lan\" in BRAID_SERVER__ALLOWED_HOSTS environment variable",
            ],
        ),
        (
            "[server]\nbnd = \"0.0.0.0:1\"\n",
            &[],
            &[
                "unknown key \"server.bnd\" in braid.toml",
                "the keys of [server] are bind",
            ],
        ),
        (
            "[executors]\nworkers = 4\n",
            &[("BRAID_EXECUTORS__WORKERS", "abc")],
            &[
                "executors.workers: invalid value \"abc\" in BRAID_EXECUTORS__WORKERS environment variable",
            ],
        ),
        (
            "",
            &[("BRAID_SERVER__BND", "x")],
            &["unknown key \"server.bnd\" in BRAID_SERVER__BND environment variable"],
        ),
        (
            "workers = 4\n",
            &[],
            &["unknown key \"workers\" in braid.toml (did you mean executors.workers?)"],
        ),
        (
            "[executors]\npoll_ms = 0\n",
            &[],
            &["executors.poll_ms: invalid value 0 in braid.toml: expected at least 1"],
        ),
        (
            "[scale_out]\nlease_ms = 500\n",
            &[("BRAID_SCALE_OUT__HEARTBEAT_MS", "800")],
            &[
                "scale_out.heartbeat_ms: invalid value 800 in BRAID_SCALE_OUT__HEARTBEAT_MS \
                 environment variable: expected less than scale_out.lease_ms (500)",
            ],
        ),
    ];
    for (file, env, expected) in cases {
        std::fs::write(d.join("braid.toml"), file).unwrap();
        for args in [&serve[..], &["config"][..]] {
            let o = braid(d, args, env);
            let err = stderr(&o);
            assert_eq!(
                o.status.code(),
                Some(2),
                "{args:?} with {file:?} {env:?}: {err}"
            );
            for part in expected {
                assert!(err.contains(part), "{part:?} missing from: {err}");
            }
            assert!(!err.contains("listening"), "a server started: {err}");
            assert!(o.stdout.is_empty());
        }
        assert!(!d.join("serve.db").exists(), "serve opened the database");
    }

    // A value of the right type that is out of range, from a flag.
    std::fs::write(d.join("braid.toml"), "").unwrap();
    let o = braid(d, &[&serve[..], &["--workers", "0"]].concat(), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o)
            .contains("executors.workers: invalid value 0 in --workers flag: expected at least 1"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("serve.db").exists());
}

#[test]
fn llm_endpoints_are_tables_of_the_file_and_a_bad_one_names_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("braid.toml"),
        "[[llm.endpoints]]\nprovider = \"openai\"\nmodel = \"gpt-4o\"\nrequests_per_minute = 500\n\n\
         [[llm.endpoints]]\nprovider = \"openai_compatible\"\nbase_url = \"http://localhost:11434/v1\"\n\
         model = \"llama3\"\nmax_concurrency = 2\ntokens_per_minute = 100000\n",
    )
    .unwrap();
    let config = effective(d, &[], &[]);
    assert_key(
        &config,
        "llm.endpoints",
        serde_json::json!([
            { "provider": "openai", "model": "gpt-4o", "requests_per_minute": 500 },
            { "provider": "openai_compatible", "base_url": "http://localhost:11434/v1", "model": "llama3",
              "max_concurrency": 2, "tokens_per_minute": 100000 }
        ]),
        "braid.toml",
    );
    // The text form prints them back as tables.
    let o = braid(d, &["config"], &[]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.matches("[[llm.endpoints]]").count(), 2, "{text}");
    assert!(text.contains("requests_per_minute = 500"), "{text}");

    let cases: [Case; 6] = [
        (
            "[[llm.endpoints]]\nprovider = \"openai\"\nmodel = \"m\"\nrpm = 3\n",
            &[],
            &[
                "unknown key \"llm.endpoints[0].rpm\" in braid.toml (the keys of [[llm.endpoints]] are provider, base_url, model",
            ],
        ),
        (
            "[[llm.endpoints]]\nprovider = \"openai\"\nmodel = \"m\"\nrequests_per_minute = -5\n",
            &[],
            &["llm.endpoints[0].requests_per_minute: invalid value -5 in braid.toml"],
        ),
        (
            "[[llm.endpoints]]\nprovider = \"openai\"\nmodel = \"m\"\nmax_concurrency = 1\n\n\
             [[llm.endpoints]]\nprovider = \"opneai\"\nmodel = \"m\"\ntokens_per_minute = 0\n",
            &[],
            &[
                "llm.endpoints[1].provider: invalid value \"opneai\" in braid.toml: expected openai, anthropic",
                "llm.endpoints[1].tokens_per_minute: invalid value 0 in braid.toml: expected at least 1",
            ],
        ),
        (
            "[[llm.endpoints]]\nprovider = \"openai\"\nmodel = \"m\"\n",
            &[],
            &["llm.endpoints[0] in braid.toml sets no limit"],
        ),
        (
            "[[llm.endpoints]]\nprovider = \"openai\"\nrequests_per_minute = 5\n",
            &[],
            &["llm.endpoints[0]", "model"],
        ),
        (
            "",
            &[("BRAID_LLM__ENDPOINTS", "x")],
            &[
                "llm.endpoints is a list of tables ([[llm.endpoints]]) and is set in the configuration file only, not by the BRAID_LLM__ENDPOINTS environment variable",
            ],
        ),
    ];
    for (file, env, expected) in cases {
        std::fs::write(d.join("braid.toml"), file).unwrap();
        let o = braid(d, &["config"], env);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{file:?} {env:?}: {err}");
        for part in expected {
            assert!(err.contains(part), "{part:?} missing from: {err}");
        }
    }
}

#[test]
fn telemetry_keys_and_the_otel_endpoint_variable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = effective(d, &[], &[]);
    assert_key(
        &config,
        "telemetry.otlp_endpoint",
        serde_json::Value::Null,
        "default",
    );
    assert_key(&config, "telemetry.service_name", "braid".into(), "default");

    let otel = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
    let config = effective(d, &[], &[otel]);
    assert_key(
        &config,
        "telemetry.otlp_endpoint",
        "http://collector:4318".into(),
        "OTEL_EXPORTER_OTLP_ENDPOINT environment variable",
    );
    // Any layer that names the key beats OpenTelemetry's variable.
    std::fs::write(
        d.join("braid.toml"),
        "[telemetry]\notlp_endpoint = \"http://file:4318\"\nservice_name = \"svc\"\n",
    )
    .unwrap();
    let config = effective(d, &[], &[otel]);
    assert_key(
        &config,
        "telemetry.otlp_endpoint",
        "http://file:4318".into(),
        "braid.toml",
    );
    assert_key(
        &config,
        "telemetry.service_name",
        "svc".into(),
        "braid.toml",
    );
    let env = [otel, ("BRAID_TELEMETRY__OTLP_ENDPOINT", "https://env:4318")];
    let config = effective(d, &["--service-name", "flagged"], &env);
    assert_key(
        &config,
        "telemetry.otlp_endpoint",
        "https://env:4318".into(),
        "BRAID_TELEMETRY__OTLP_ENDPOINT environment variable",
    );
    assert_key(
        &config,
        "telemetry.service_name",
        "flagged".into(),
        "--service-name flag",
    );

    // Not a URL: refused with the key and its source, nothing served.
    let o = braid(
        d,
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--otlp-endpoint",
            "collector:4318",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "telemetry.otlp_endpoint: invalid value \"collector:4318\" in --otlp-endpoint flag: expected an http:// or https:// URL"
        ),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("braid.db").exists());
}

#[test]
fn database_url_is_used_only_when_no_store_is_named_and_is_masked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = ("DATABASE_URL", "postgres://braid:s3cret@db.internal/braid");
    let masked = serde_json::Value::from("postgres://braid:****@db.internal/braid");

    let config = effective(d, &[], &[url]);
    assert_key(
        &config,
        "store.database_url",
        masked.clone(),
        "DATABASE_URL environment variable",
    );
    assert_key(&config, "store.db", "braid.db".into(), "default");
    let o = braid(d, &["config"], &[url]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        !text.contains("s3cret") && text.contains("braid:****@"),
        "{text}"
    );
    // The store is then that database: one nobody listens on is an error
    // naming it, password masked, and no SQLite file appears.
    let unreachable = ("DATABASE_URL", "postgres://braid:s3cret@127.0.0.1:1/braid");
    let o = braid(d, &["serve", "--bind", "127.0.0.1:0"], &[unreachable]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("opening PostgreSQL database postgres://braid:****@127.0.0.1:1/braid")
            && !err.contains("s3cret"),
        "{err}"
    );
    assert!(!d.join("braid.db").exists());

    // Any store named by the environment, a flag or the file wins.
    let config = effective(d, &[], &[url, ("BRAID_STORE__DB", "env.db")]);
    assert_key(
        &config,
        "store.db",
        "env.db".into(),
        "BRAID_STORE__DB environment variable",
    );
    assert_key(
        &config,
        "store.database_url",
        serde_json::Value::Null,
        "default",
    );
    let config = effective(d, &["--db", "flag.db"], &[url]);
    assert_key(&config, "store.db", "flag.db".into(), "--db flag");
    assert_key(
        &config,
        "store.database_url",
        serde_json::Value::Null,
        "default",
    );
    let config = effective(
        d,
        &[],
        &[url, ("BRAID_STORE__DATABASE_URL", "postgres://other/braid")],
    );
    assert_key(
        &config,
        "store.database_url",
        "postgres://other/braid".into(),
        "BRAID_STORE__DATABASE_URL environment variable",
    );
    std::fs::write(d.join("braid.toml"), "[store]\ndb = \"file.db\"\n").unwrap();
    let config = effective(d, &[], &[url]);
    assert_key(&config, "store.db", "file.db".into(), "braid.toml");
    assert_key(
        &config,
        "store.database_url",
        serde_json::Value::Null,
        "default",
    );
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_applies_the_configured_body_limit_and_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("braid.toml"), "[server]\nbody_limit_bytes = 1024\n").unwrap();
    // A list from the environment: comma-separated.
    let hosts = [("BRAID_SERVER__ALLOWED_HOSTS", "braid.lan, braid")];
    let mut server = Server(
        command(d, &["serve", "--bind", "127.0.0.1:0"], &hosts)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("braid serve starts"),
    );
    let mut lines = BufReader::new(server.0.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("braid serve reports its address before exiting")
            .unwrap();
        if let Some(rest) = line.strip_prefix("braid listening on http://") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let post_as = |host: &str, len: usize| {
        let mut stream = TcpStream::connect(&addr).unwrap();
        let body = format!("{{\"name\": \"{}\"}}", "x".repeat(len));
        write!(
            stream,
            "POST /api/workflow-defs HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    };
    let post = |len: usize| post_as("braid", len);
    let big = post(2048);
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    assert!(big.contains("BODY_TOO_LARGE"), "{big}");
    // Under the limit the body reaches the handler (and is judged on its own merits).
    let small = post(10);
    assert!(!small.starts_with("HTTP/1.1 413"), "{small}");
    assert!(small.starts_with("HTTP/1.1 4"), "{small}");
    // A name that is not configured is refused (DNS rebinding).
    let other = post_as("elsewhere.example", 10);
    assert!(other.starts_with("HTTP/1.1 403"), "{other}");
    assert!(other.contains("CROSS_ORIGIN"), "{other}");
    assert!(d.join("braid.db").exists());
}

/// `braid serve` on `dir` with `args`, once it says where it listens: the
/// server and its address.
fn serve_until_listening(dir: &Path, args: &[&str]) -> (Server, String) {
    let mut server = Server(
        command(dir, args, &[])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("braid serve starts"),
    );
    let mut lines = BufReader::new(server.0.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("braid serve reports its address before exiting")
            .unwrap();
        if let Some(rest) = line.strip_prefix("braid listening on http://") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep reading: a closed pipe would fail the server's next log line.
    std::thread::spawn(move || lines.for_each(drop));
    (server, addr)
}

#[tokio::test]
async fn serve_runs_on_a_postgres_database_url_and_more_processes_join_it() {
    let Some(db) = braid_store_postgres::testing::TestDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["serve", "--bind", "127.0.0.1:0", "--database-url", db.url()];
    let get = |addr: &str, path: &str| {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    };
    let (_first, a) = serve_until_listening(d, &args);
    // A second process on the same database joins the first.
    let (_second, b) = serve_until_listening(d, &args);
    for addr in [&a, &b] {
        let runs = get(addr, "/api/runs");
        assert!(runs.starts_with("HTTP/1.1 200"), "{runs}");
        let metrics = get(addr, "/metrics");
        assert!(metrics.contains("braid_servers_live 2"), "{metrics}");
    }
    assert!(!d.join("braid.db").exists(), "no SQLite file beside it");
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM servers WHERE stopped_at IS NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(live, 2);
}
