// The harness itself: a bundle whose model profile points at the local
// chat-completions server runs to its end on the real `braid serve`, and a
// held answer keeps a run visibly running until the test lets it go.
import { expect, test } from "./harness";
import { judgePanel } from "./support/bundles";

test("runs reach the local LLM server, which can hold them running", async ({ braid, llm }) => {
  llm.answer((req) => ({
    content: { vote: req.messages[1].content.includes("judge 1") ? "B" : "A" },
    usage: { prompt_tokens: 20, completion_tokens: 3 },
  }));
  const saved = await braid.saveBundle(judgePanel(llm.baseUrl));
  expect(saved).toMatchObject({ name: "judge_panel", version: 1, created: true });

  const done = await braid.runToEnd("judge_panel", { question: "A or B?" });
  expect(done.status).toBe("completed");
  expect(done).toMatchObject({ context: { output: { winner: "A" } }, usage: { llm_calls: 3, input_tokens: 60 } });
  expect(llm.total).toBe(3);
  expect(llm.requests[0].messages[0]).toEqual({ role: "system", content: "You are a strict judge." });

  const release = llm.hold();
  const id = await braid.startRun("judge_panel", { question: "again?" });
  await expect.poll(() => llm.inFlight).toBe(3);
  expect((await braid.run(id)).status).toBe("running");
  release();
  const ended = await braid.waitForRun(id);
  expect(ended.status).toBe("completed");
  expect([llm.total, llm.inFlight]).toEqual([6, 0]);
});
