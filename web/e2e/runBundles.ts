// Bundles the run-view tests save through the API, beside the shared judge
// panel of support/bundles.ts: a parent that calls it as a child run, a
// call that fails after its retries, and a 10,000-branch fan-out.

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
