// A local server speaking the OpenAI chat-completions wire format, for
// bundles whose model profile is `provider: openai_compatible` with
// `base_url: llm.baseUrl`. Each request is answered by the test's script;
// the server counts requests in flight and in total, and can hold answers
// back (`hold()`) so that a test can look at a run while it is running.
import http from "node:http";
import type { AddressInfo } from "node:net";

/** One chat-completions request as the server received it. */
export interface ChatRequest {
  /** 0 for the first request, 1 for the next … */
  index: number;
  model: string;
  messages: { role: string; content: string }[];
  body: Record<string, unknown>;
}

/** How to answer one request. */
export interface Reply {
  /** The message content: an object is sent as its JSON text (structured output). */
  content?: string | Record<string, unknown>;
  /** HTTP status (default 200); a non-2xx status sends an OpenAI-style error. */
  status?: number;
  /** Reported usage (default 10 prompt / 5 completion tokens). */
  usage?: { prompt_tokens: number; completion_tokens: number };
}

export type Script = (req: ChatRequest) => Reply | Promise<Reply>;

export class LlmServer {
  /** `http://127.0.0.1:PORT/v1`: the `base_url` of a model profile. */
  baseUrl = "";
  /** Requests being answered now. */
  inFlight = 0;
  /** Requests received so far. */
  total = 0;
  /** Every request received, in order. */
  readonly requests: ChatRequest[] = [];
  private script: Script = () => ({ content: "ok" });
  private gate: Promise<void> | null = null;
  private openGate: () => void = () => {};
  private readonly server = http.createServer((req, res) => void this.handle(req, res));

  /** Answers every following request with `script`. */
  answer(script: Script): void {
    this.script = script;
  }

  /** Holds every answer back until the returned function is called. */
  hold(): () => void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
    return () => {
      this.gate = null;
      this.openGate();
    };
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.baseUrl = `http://127.0.0.1:${port}/v1`;
  }

  async stop(): Promise<void> {
    this.openGate();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
    const request: ChatRequest = {
      index: this.total++,
      model: String(body.model),
      messages: (body.messages ?? []) as ChatRequest["messages"],
      body,
    };
    this.requests.push(request);
    this.inFlight++;
    try {
      if (this.gate) await this.gate;
      const reply = await this.script(request);
      this.send(res, request, reply);
    } finally {
      this.inFlight--;
    }
  }

  private send(res: http.ServerResponse, request: ChatRequest, reply: Reply): void {
    const status = reply.status ?? 200;
    const id = `chatcmpl-${request.index}`;
    if (status >= 300) {
      res.writeHead(status, { "content-type": "application/json", "x-request-id": id });
      res.end(JSON.stringify({ error: { message: `scripted failure ${status}`, type: "test" } }));
      return;
    }
    const content = typeof reply.content === "object" ? JSON.stringify(reply.content) : (reply.content ?? "");
    const usage = reply.usage ?? { prompt_tokens: 10, completion_tokens: 5 };
    res.writeHead(200, { "content-type": "application/json", "x-request-id": id });
    res.end(
      JSON.stringify({
        id,
        object: "chat.completion",
        created: Math.floor(Date.now() / 1000),
        model: request.model,
        choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
        usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
      }),
    );
  }
}
