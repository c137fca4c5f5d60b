// Bundles the run-view tests save through the API: a judge panel (three
// `llm_call`s fanned out), a parent that calls it as a child run, a call
// that fails after retries, and a 10,000-branch `update_context` fan-out.

/** Prices of the test model: $0.50 / 1k prompt tokens, $1.50 / 1k completion tokens. */
export const PRICE_IN = 0.5;
export const PRICE_OUT = 1.5;

export function costOf(prompt: number, completion: number): number {
  return (prompt * PRICE_IN + completion * PRICE_OUT) / 1000;
}

function profile(baseUrl: string, ref = "local") {
  return {
    ref,
    provider: "openai_compatible",
    base_url: baseUrl,
    model: "judge-model",
    cost_per_1k_input_tokens: PRICE_IN,
    cost_per_1k_output_tokens: PRICE_OUT,
  };
}

export function judgePanel(baseUrl: string) {
  return {
    name: "judge_panel",
    input_schema: { type: "object", required: ["question"], properties: { question: { type: "string" } } },
    initial_node: "ask",
    nodes: [
      { ref: "ask", action: { kind: "update_context", updates: [{ path: "state.question", expr: "input.question" }] } },
      { ref: "judge", action: "judge_llm", output_mapping: { "state.vote": "result.vote" } },
      {
        ref: "tally",
        fan_in: "all",
        joins: "ask",
        merge: { source: "vote", target: "state.votes", strategy: "append" },
        action: {
          kind: "update_context",
          updates: [{ path: "output.winner", expr: "state.votes.filter(v, v == 'A').size() >= 2 ? 'A' : 'B'" }],
        },
      },
    ],
    transitions: [
      { from: "ask", to: "judge", spawn_count: 3 },
      { from: "judge", to: "tally" },
    ],
    actions: [{ ref: "judge_llm", kind: "llm_call", prompt: "judge_prompt", model: "local" }],
    prompt_specs: [
      {
        ref: "judge_prompt",
        system: "You are a strict judge.",
        template: "Question: {{state.question}} You are judge {{_branch.index}}. Answer A or B.",
        produces: { type: "object", required: ["vote"], properties: { vote: { type: "string", enum: ["A", "B"] } } },
      },
    ],
    model_profiles: [profile(baseUrl)],
  };
}

/** Calls judge_panel as a child run, then makes one LLM call of its own. */
export function panelParent(baseUrl: string) {
  return {
    name: "panel_parent",
    initial_node: "call",
    nodes: [
      {
        ref: "call",
        action: { kind: "workflow_call", workflow: "judge_panel" },
        input_mapping: { question: "'tea or coffee?'" },
        output_mapping: { "state.winner": "result.winner" },
      },
      {
        ref: "announce",
        action: { kind: "llm_call", prompt: "announce_prompt", model: "local" },
        output_mapping: { "output.text": "result.text" },
      },
    ],
    transitions: [{ from: "call", to: "announce" }],
    prompt_specs: [{ ref: "announce_prompt", template: "Announce the winner {{state.winner}}." }],
    model_profiles: [profile(baseUrl)],
  };
}

/** One call whose answers are an outage, then garbage: it fails after its two attempts. */
export function flaky(baseUrl: string) {
  return {
    name: "flaky",
    initial_node: "ask",
    nodes: [{ ref: "ask", action: "ask_llm" }],
    actions: [
      {
        ref: "ask_llm",
        kind: "llm_call",
        prompt: "ask_prompt",
        model: "local",
        execution: {
          retry_policy: { max_attempts: 2, backoff: "none", retryable_errors: ["UNAVAILABLE", "BAD_RESPONSE"] },
        },
      },
    ],
    prompt_specs: [
      {
        ref: "ask_prompt",
        template: "Give me a verdict.",
        produces: { type: "object", required: ["verdict"], properties: { verdict: { type: "string" } } },
      },
    ],
    model_profiles: [profile(baseUrl)],
  };
}

/** `branches` update_context branches joined again: no LLM, many tokens and events. */
export function bigFanOut(branches: number) {
  return {
    name: "big_fan_out",
    initial_node: "start",
    nodes: [
      { ref: "start", action: { kind: "update_context", updates: [{ path: "state.n", expr: "1" }] } },
      { ref: "work", action: { kind: "update_context", updates: [{ path: "state.x", expr: "_branch.index" }] } },
      {
        ref: "join",
        fan_in: "all",
        joins: "start",
        merge: { source: "x", target: "state.xs", strategy: "collect" },
        action: { kind: "update_context", updates: [{ path: "output.count", expr: "state.xs.size()" }] },
      },
    ],
    transitions: [
      { from: "start", to: "work", spawn_count: branches },
      { from: "work", to: "join" },
    ],
  };
}
