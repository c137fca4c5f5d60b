//! The three-node workflow `prepare (update_context) → summarize (llm_call)
//! → save (write_artifact)`, written by hand in SQL or saved as YAML through
//! the API, run over HTTP and checked end to end.

use crate::common::{MockLlm, Server, assert_no_secret, in_child_with_env};
use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

/// The key the model profile's `api_key_env` variable holds.
const KEY: &str = "sk-test-braid-3f9c2a7e51d04b6f";
/// Distinct variables per test: each test sets its own in its own process.
const SQL_KEY_ENV: &str = "BRAID_TEST_KEY_SEED_SQL";
const YAML_KEY_ENV: &str = "BRAID_TEST_KEY_SEED_YAML";

const PROMPT_TOKENS: u64 = 1200;
const COMPLETION_TOKENS: u64 = 300;
const COST_IN: f64 = 0.0015;
const COST_OUT: f64 = 0.002;

fn llm_answer() -> Value {
    json!({ "summary": "Rivers carry rain back to the sea.", "score": 7 })
}

fn produces() -> Value {
    json!({
        "type": "object",
        "required": ["summary", "score"],
        "additionalProperties": false,
        "properties": { "summary": { "type": "string" }, "score": { "type": "integer" } }
    })
}

fn input_schema() -> Value {
    json!({ "type": "object", "required": ["topic"], "properties": { "topic": { "type": "string" } } })
}

fn artifact_schema() -> Value {
    json!({
        "type": "object",
        "required": ["topic", "text", "score"],
        "properties": { "topic": { "type": "string" }, "text": { "type": "string" }, "score": { "type": "integer" } }
    })
}

/// The workflow as hand-written SQL rows (docs/schema.md).
async fn seed_sql(server: &Server, base_url: &str, key_env: &str) {
    let mut db = SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(&server.db)
            .foreign_keys(true),
    )
    .await
    .expect("open the database file");
    let mut tx = db.begin().await.unwrap();
    let rows: Vec<(&str, Vec<String>)> = vec![
        ("INSERT INTO workflows (id, project_id, name) VALUES (?, 'proj_default', 'summarize')", vec!["wf_summarize".into()]),
        (
            "INSERT INTO workflow_defs (id, workflow_id, version, description, initial_node, input_schema, output_mapping, defines_artifact_types)
             VALUES ('def_summarize_1', 'wf_summarize', 1, 'Summarize a topic and keep the summary.', 'prepare', ?, ?, '[\"summary\"]')",
            vec![input_schema().to_string(), json!({ "summary": "state.summary" }).to_string()],
        ),
        (
            "INSERT INTO artifact_types (id, project_id, name, version, schema) VALUES ('at_summary_1', 'proj_default', 'summary', 1, ?)",
            vec![artifact_schema().to_string()],
        ),
        (
            "INSERT INTO prompt_specs (def_id, ref, system, template, produces)
             VALUES ('def_summarize_1', 'summary_prompt', 'You write one-sentence summaries.', 'Summarize {{state.topic}} for {{state.audience}}.', ?)",
            vec![produces().to_string()],
        ),
        (
            "INSERT INTO model_profiles (def_id, ref, provider, model, base_url, api_key_env, parameters, cost_per_1k_input_tokens, cost_per_1k_output_tokens)
             VALUES ('def_summarize_1', 'fast', 'openai', 'gpt-4o-mini', ?, ?, '{\"temperature\": 0.2, \"max_tokens\": 200}', ?, ?)",
            vec![base_url.into(), key_env.into(), COST_IN.to_string(), COST_OUT.to_string()],
        ),
        (
            "INSERT INTO actions (def_id, ref, kind, config, execution) VALUES
                ('def_summarize_1', 'prepare.action', 'update_context', ?, NULL),
                ('def_summarize_1', 'summarize_llm', 'llm_call', '{\"prompt\": \"summary_prompt\", \"model\": \"fast\"}', '{\"timeout_ms\": 30000}'),
                ('def_summarize_1', 'save.action', 'write_artifact', ?, NULL)",
            vec![
                json!({ "updates": [
                    { "path": "state.topic", "expr": "input.topic" },
                    { "path": "state.audience", "expr": "'engineers'" }
                ] })
                .to_string(),
                json!({ "artifact_type": "summary", "name": "summary",
                        "content_mapping": { "topic": "state.topic", "text": "state.summary", "score": "state.score" } })
                .to_string(),
            ],
        ),
        (
            "INSERT INTO nodes (def_id, ref, action_ref, action_inline, output_mapping) VALUES
                ('def_summarize_1', 'prepare', 'prepare.action', 1, NULL),
                ('def_summarize_1', 'summarize', 'summarize_llm', 0, ?),
                ('def_summarize_1', 'save', 'save.action', 1, NULL)",
            vec![json!({ "state.summary": "result.summary", "state.score": "result.score" }).to_string()],
        ),
        (
            "INSERT INTO transitions (def_id, from_node, to_node) VALUES
                ('def_summarize_1', 'prepare', 'summarize'),
                ('def_summarize_1', 'summarize', 'save')",
            vec![],
        ),
    ];
    for (sql, binds) in rows {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(b);
        }
        q.execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    tx.commit().await.unwrap();
    db.close().await.unwrap();
}

/// The same workflow as a YAML bundle.
fn yaml_bundle(base_url: &str, key_env: &str, template: &str) -> String {
    format!(
        r#"# Summarize a topic and keep the summary.
name: summarize
description: Summarize a topic and keep the summary.
input_schema:
  type: object
  required: [topic]
  properties:
    topic: {{ type: string }}
output_mapping:
  summary: state.summary
initial_node: prepare
nodes:
  - ref: prepare
    action:
      kind: update_context
      updates:
        - {{ path: state.topic, expr: input.topic }}
        - {{ path: state.audience, expr: "'engineers'" }}
  - ref: summarize
    action: summarize_llm
    output_mapping:
      state.summary: result.summary
      state.score: result.score
  - ref: save
    action:
      kind: write_artifact
      artifact_type: summary
      name: summary
      content_mapping: {{ topic: state.topic, text: state.summary, score: state.score }}
transitions:
  - {{ from: prepare, to: summarize }}
  - {{ from: summarize, to: save }}
actions:
  - ref: summarize_llm
    kind: llm_call
    prompt: summary_prompt
    model: fast
    execution: {{ timeout_ms: 30000 }}
prompt_specs:
  - ref: summary_prompt
    system: You write one-sentence summaries.
    template: "{template}"
    produces:
      type: object
      required: [summary, score]
      additionalProperties: false
      properties:
        summary: {{ type: string }}
        score: {{ type: integer }}
model_profiles:
  - ref: fast
    provider: openai
    model: gpt-4o-mini
    base_url: {base_url}
    api_key_env: {key_env}
    parameters: {{ temperature: 0.2, max_tokens: 200 }}
    cost_per_1k_input_tokens: {COST_IN}
    cost_per_1k_output_tokens: {COST_OUT}
artifact_types:
  - ref: summary
    schema:
      type: object
      required: [topic, text, score]
      properties:
        topic: {{ type: string }}
        text: {{ type: string }}
        score: {{ type: integer }}
"#
    )
}

const TEMPLATE: &str = "Summarize {{state.topic}} for {{state.audience}}.";

/// Runs `workflow` with `?wait=true` and checks the whole story. Returns
/// every response text (for the key-leak check).
async fn run_and_check(
    server: &Server,
    llm: &MockLlm,
    workflow: &str,
    workflow_id: &str,
    version: i64,
) -> Vec<String> {
    let mut texts = Vec::new();
    let started = server
        .post(
            &format!("/api/workflow-defs/{workflow}/runs?wait=true&timeout_s=60"),
            &json!({ "input": { "topic": "rivers" } }),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.text);
    let run = started.body.clone();
    let run_id = run["id"]
        .as_str()
        .expect("with wait=true the answer is the run")
        .to_string();
    assert!(run_id.starts_with("run_"), "{run_id}");
    assert_eq!(
        started
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some(format!("/api/runs/{run_id}").as_str())
    );
    texts.push(started.text.clone());

    // The run body.
    assert_eq!(run["status"], "completed", "{}", started.text);
    assert_eq!(run["error"], Value::Null);
    assert_eq!(
        run["workflow"],
        json!({ "id": workflow_id, "name": "summarize", "version": version })
    );
    assert_eq!(run["project_id"], "proj_default");
    assert_eq!(run["context"]["input"], json!({ "topic": "rivers" }));
    // The context mutation of update_context, then the LLM's parsed answer via output_mapping.
    assert_eq!(
        run["context"]["state"],
        json!({ "topic": "rivers", "audience": "engineers", "summary": "Rivers carry rain back to the sea.", "score": 7 })
    );
    assert_eq!(
        run["context"]["output"],
        json!({ "summary": "Rivers carry rain back to the sea." })
    );
    assert_eq!(run["usage"]["llm_calls"], 1);
    assert_eq!(run["usage"]["input_tokens"], PROMPT_TOKENS);
    assert_eq!(run["usage"]["output_tokens"], COMPLETION_TOKENS);
    let expected_cost =
        PROMPT_TOKENS as f64 / 1000.0 * COST_IN + COMPLETION_TOKENS as f64 / 1000.0 * COST_OUT;
    let cost = run["usage"]["cost_usd"]
        .as_f64()
        .expect("cost_usd is a number");
    assert!(
        (cost - expected_cost).abs() < 1e-12,
        "cost {cost} != {expected_cost}"
    );
    assert_eq!(run["parent_run_id"], Value::Null);
    assert_eq!(run["children"], json!([]));
    let (created, started_at, ended) = (
        run["created_at"].as_str().unwrap(),
        run["started_at"].as_str().unwrap(),
        run["ended_at"].as_str().unwrap(),
    );
    for t in [created, started_at, ended] {
        assert!(
            t.len() == 24 && t.ends_with('Z') && &t[10..11] == "T",
            "RFC 3339 UTC with millis: {t}"
        );
    }
    assert!(
        created <= started_at && started_at <= ended,
        "{created} {started_at} {ended}"
    );

    // GET answers the same run.
    let got = server.get(&format!("/api/runs/{run_id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, run);
    texts.push(got.text.clone());

    // The LLM call on the wire.
    let calls = llm.recorded();
    assert_eq!(calls.len(), 1, "exactly one call: {calls:?}");
    let call = &calls[0];
    assert_eq!(
        call.authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = &call.body;
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(
        body["messages"],
        json!([
            { "role": "system", "content": "You write one-sentence summaries." },
            { "role": "user", "content": "Summarize rivers for engineers." }
        ])
    );
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["schema"], produces());
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["max_completion_tokens"], 200);

    // The artifact.
    let list = server.get(&format!("/api/artifacts?run={run_id}")).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", list.text);
    assert_eq!(list.body["next_cursor"], Value::Null);
    let art_id = items[0]["id"].as_str().unwrap();
    assert!(art_id.starts_with("art_"), "{art_id}");
    assert_eq!(run["context"]["artifacts"], json!({ "summary": art_id }));
    let art = server.get(&format!("/api/artifacts/{art_id}")).await;
    assert_eq!(art.status, 200);
    assert_eq!(art.body, items[0]);
    assert_eq!(
        art.body["content"],
        json!({ "topic": "rivers", "text": "Rivers carry rain back to the sea.", "score": 7 })
    );
    assert_eq!(art.body["type"], "summary");
    assert_eq!(art.body["type_version"], 1);
    assert_eq!(art.body["name"], "summary");
    assert_eq!(art.body["project_id"], "proj_default");
    assert_eq!(art.body["created_by_workflow_run_id"], run_id.as_str());
    assert_eq!(art.body["created_by_node"], "save");
    assert!(art.body["created_at"].as_str().unwrap().ends_with('Z'));
    let by_type = server.get("/api/artifacts?type=summary").await;
    assert!(
        by_type.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == art_id)
    );
    texts.extend([list.text.clone(), art.text.clone()]);

    // The events tell the story, numbered 1..N without gaps.
    let events = server
        .all_pages(&format!("/api/runs/{run_id}/events"), 1000)
        .await;
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>());
    assert_eq!(run["last_seq"], events.len() as i64);
    assert!(
        events.iter().all(|e| e["run_id"] == run_id.as_str()
            && e["ts"].as_str().is_some_and(|t| t.ends_with('Z')))
    );
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"workflow_started"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"workflow_completed"), "{kinds:?}");
    assert_eq!(events[0]["payload"]["input"], json!({ "topic": "rivers" }));
    assert_eq!(
        events.last().unwrap()["payload"]["output"],
        run["context"]["output"]
    );
    fn of<'a>(events: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
        events.iter().filter(move |e| e["kind"] == kind)
    }
    let completed: Vec<&str> = of(&events, "node_completed")
        .map(|e| e["node"].as_str().unwrap())
        .collect();
    assert_eq!(completed, ["prepare", "summarize", "save"], "{kinds:?}");
    let started_nodes: Vec<&str> = of(&events, "node_started")
        .map(|e| e["node"].as_str().unwrap())
        .collect();
    assert_eq!(started_nodes, ["prepare", "summarize", "save"], "{kinds:?}");
    let hops: Vec<(String, String)> = of(&events, "transition_taken")
        .map(|e| {
            (
                e["payload"]["from"].as_str().unwrap().into(),
                e["payload"]["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        hops,
        [
            ("prepare".into(), "summarize".into()),
            ("summarize".into(), "save".into())
        ]
    );
    let llm_done = of(&events, "node_completed")
        .find(|e| e["node"] == "summarize")
        .unwrap();
    assert_eq!(llm_done["payload"]["result"], llm_answer());
    assert_eq!(llm_done["payload"]["usage"]["input_tokens"], PROMPT_TOKENS);
    assert_eq!(
        llm_done["payload"]["usage"]["output_tokens"],
        COMPLETION_TOKENS
    );
    let art_event: Vec<&Value> = of(&events, "artifact_created").collect();
    assert_eq!(art_event.len(), 1, "{kinds:?}");
    assert_eq!(art_event[0]["payload"]["artifact_id"], art_id);
    assert_eq!(art_event[0]["payload"]["name"], "summary");
    assert!(
        of(&events, "context_updated").any(|e| e["node"] == "prepare"),
        "{kinds:?}"
    );
    // The same log in pages of 2, following next_cursor.
    assert_eq!(
        server
            .all_pages(&format!("/api/runs/{run_id}/events"), 2)
            .await,
        events
    );
    texts.extend(events.iter().map(Value::to_string));

    // One token per node visit, all completed.
    let tokens = server
        .all_pages(&format!("/api/runs/{run_id}/tokens"), 100)
        .await;
    let visits: Vec<(&str, &str)> = tokens
        .iter()
        .map(|t| (t["node"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        visits,
        [
            ("prepare", "completed"),
            ("summarize", "completed"),
            ("save", "completed")
        ]
    );
    assert!(
        tokens
            .iter()
            .all(|t| t["attempts"].as_i64().unwrap() >= 1 && t["created_at"].as_str().is_some())
    );

    // The run is listed.
    let runs = server
        .get(&format!("/api/runs?workflow={workflow}&status=completed"))
        .await;
    assert!(
        runs.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == run_id.as_str()),
        "{}",
        runs.text
    );
    texts
}

/// The seed test: a workflow inserted with SQL runs over HTTP.
#[tokio::test]
async fn hand_written_sql_workflow_runs_over_http() {
    if !in_child_with_env(
        "story::hand_written_sql_workflow_runs_over_http",
        SQL_KEY_ENV,
        KEY,
    ) {
        return;
    }
    let server = Server::start().await;
    let llm = MockLlm::start(&llm_answer(), PROMPT_TOKENS, COMPLETION_TOKENS).await;
    seed_sql(&server, &llm.base_url, SQL_KEY_ENV).await;

    let listed = server.get("/api/workflow-defs").await;
    assert_eq!(
        listed.body["items"][0]["id"], "wf_summarize",
        "{}",
        listed.text
    );
    assert_eq!(listed.body["items"][0]["latest_version"], 1);

    let mut texts = run_and_check(&server, &llm, "summarize", "wf_summarize", 1).await;

    // The hand-written version reads back as a bundle that saves as the same version.
    let bundle = server.get("/api/workflow-defs/wf_summarize").await;
    assert_eq!(bundle.status, 200, "{}", bundle.text);
    assert_eq!(
        bundle.headers.get(braid_server::VERSION_HEADER).unwrap(),
        "1"
    );
    let saved = server.post("/api/workflow-defs", &bundle.body).await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    assert_eq!(
        saved.body,
        json!({ "id": "wf_summarize", "name": "summarize", "version": 1, "created": false })
    );
    texts.push(bundle.text.clone());

    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    assert_no_secret(KEY, &refs);
}

/// The same workflow saved as YAML through the API, versioned, read back and run.
#[tokio::test]
async fn yaml_bundle_saves_versions_and_runs() {
    if !in_child_with_env(
        "story::yaml_bundle_saves_versions_and_runs",
        YAML_KEY_ENV,
        KEY,
    ) {
        return;
    }
    let server = Server::start().await;
    let llm = MockLlm::start(&llm_answer(), PROMPT_TOKENS, COMPLETION_TOKENS).await;
    let yaml = yaml_bundle(&llm.base_url, YAML_KEY_ENV, TEMPLATE);

    let first = server
        .post_raw("/api/workflow-defs", "application/yaml", yaml.clone())
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let wf_id = first.body["id"].as_str().unwrap().to_string();
    assert!(wf_id.starts_with("wf_"), "{wf_id}");
    assert_eq!(
        first.body,
        json!({ "id": wf_id, "name": "summarize", "version": 1, "created": true })
    );

    // Same content: same version, whatever the form (YAML again, YAML
    // sniffed without a content type, the JSON read back, YAML read back).
    let again = server
        .post_raw("/api/workflow-defs", "application/yaml", yaml.clone())
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        again.body,
        json!({ "id": wf_id, "name": "summarize", "version": 1, "created": false })
    );
    let sniffed = server
        .post_raw("/api/workflow-defs", "text/plain", yaml.clone())
        .await;
    assert_eq!(
        (sniffed.status, &sniffed.body["version"]),
        (200, &json!(1)),
        "{}",
        sniffed.text
    );

    let read = server.get("/api/workflow-defs/summarize").await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(
        read.headers.get(braid_server::WORKFLOW_ID_HEADER).unwrap(),
        wf_id.as_str()
    );
    assert_eq!(read.headers.get(braid_server::VERSION_HEADER).unwrap(), "1");
    assert_eq!(read.body["name"], "summarize");
    assert_eq!(read.body["prompt_specs"][0]["template"], TEMPLATE);
    assert_eq!(read.body["model_profiles"][0]["api_key_env"], YAML_KEY_ENV);
    let json_back = server.post("/api/workflow-defs", &read.body).await;
    assert_eq!(
        (json_back.status, &json_back.body["version"]),
        (200, &json!(1)),
        "{}",
        json_back.text
    );

    let read_yaml = server
        .get_accept(&format!("/api/workflow-defs/{wf_id}"), "application/yaml")
        .await;
    assert_eq!(read_yaml.status, 200, "{}", read_yaml.text);
    assert_eq!(
        read_yaml.headers.get("content-type").unwrap(),
        "application/yaml"
    );
    let yaml_back = server
        .post_raw(
            "/api/workflow-defs",
            "application/yaml",
            read_yaml.text.clone(),
        )
        .await;
    assert_eq!(
        (yaml_back.status, &yaml_back.body["version"]),
        (200, &json!(1)),
        "{}\n{}",
        yaml_back.text,
        read_yaml.text
    );

    // Changed content: version 2; version 1 stays readable.
    let changed = yaml_bundle(
        &llm.base_url,
        YAML_KEY_ENV,
        "Summarize {{state.topic}} in one sentence for {{state.audience}}.",
    );
    let second = server
        .post_raw("/api/workflow-defs", "application/yaml", changed)
        .await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(
        second.body,
        json!({ "id": wf_id, "name": "summarize", "version": 2, "created": true })
    );
    let v1 = server.get("/api/workflow-defs/summarize?version=1").await;
    assert_eq!(v1.body, read.body);
    let latest = server.get("/api/workflow-defs/summarize").await;
    assert_eq!(
        latest.headers.get(braid_server::VERSION_HEADER).unwrap(),
        "2"
    );
    assert_ne!(latest.body, read.body);
    let listed = server.get("/api/workflow-defs").await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        listed.text
    );
    assert_eq!(listed.body["items"][0]["latest_version"], 2);

    // Back to the first content: a new version (3), since it differs from the latest.
    let third = server
        .post_raw("/api/workflow-defs", "application/yaml", yaml.clone())
        .await;
    assert_eq!(
        (third.status, &third.body["version"]),
        (201, &json!(3)),
        "{}",
        third.text
    );

    let mut texts = run_and_check(&server, &llm, "summarize", &wf_id, 3).await;
    texts.extend([read.text, read_yaml.text, latest.text]);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    assert_no_secret(KEY, &refs);
}
