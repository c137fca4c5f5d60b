// Bundles the browser tests share. Their model profiles point at the
// test's local chat-completions server (`llm.baseUrl`).

/** SPEC §2's example: three LLM judges fan out from `ask`, `tally` joins their votes. */
export function judgePanel(llmBaseUrl: string, name = "judge_panel"): string {
  return `
name: ${name}
description: Three judges vote; majority wins.
input_schema: { type: object, required: [question], properties: { question: { type: string } } }
output_schema: { type: object, properties: { winner: { type: string } } }
initial_node: ask
nodes:
  - ref: ask
    action: { kind: update_context, updates: [ { path: state.question, expr: "input.question" } ] }
  - ref: judge
    action: judge_llm
    output_mapping: { state.vote: "result.vote" }
  - ref: tally
    fan_in: all
    joins: ask
    merge: { source: vote, target: state.votes, strategy: append }
    action: { kind: update_context, updates: [ { path: output.winner, expr: "state.votes.filter(v, v == 'A').size() >= 2 ? 'A' : 'B'" } ] }
transitions:
  - { from: ask, to: judge, spawn_count: 3 }
  - { from: judge, to: tally }
actions:
  - ref: judge_llm
    kind: llm_call
    prompt: judge_prompt
    model: fast
    execution: { timeout_ms: 30000, retry_policy: { max_attempts: 2, backoff: none, initial_delay_ms: 10 } }
prompt_specs:
  - ref: judge_prompt
    system: You are a strict judge.
    template: "Question: {{state.question}}. You are judge {{_branch.index}}. Answer A or B."
    produces: { type: object, required: [vote], properties: { vote: { type: string, enum: [A, B] } } }
model_profiles:
  - ref: fast
    provider: openai_compatible
    base_url: "${llmBaseUrl}"
    model: gpt-4o-mini
    cost_per_1k_input_tokens: 0.00015
    cost_per_1k_output_tokens: 0.0006
`;
}
