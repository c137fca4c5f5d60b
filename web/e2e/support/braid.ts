// `braid serve` for one test: the binary from BRAID_BIN (default
// ../target/debug/braid), a fresh SQLite file in a temp dir, a free port
// (the server binds port 0 and prints the address it got). Environment
// variables pass through, so BRAID_SERVER__UI_DIR=<web/dist> serves a fresh
// `npm run build` without rebuilding the binary.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
/** The `braid` binary the tests run. */
export const braidBin = path.resolve(process.env.BRAID_BIN ?? path.join(here, "../../../target/debug/braid"));

/** A JSON answer of the API. */
export interface Answer<T = unknown> {
  status: number;
  body: T;
}

export interface SavedDefinition {
  id: string;
  name: string;
  version: number;
  created: boolean;
}

export interface RunBody {
  id: string;
  status: string;
  [key: string]: unknown;
}

export class Braid {
  /** `http://127.0.0.1:PORT`, the UI's and the API's origin. */
  url = "";
  /** What the server wrote to stderr so far (shown when a test fails). */
  log = "";
  private child: ChildProcess | null = null;

  constructor(private readonly dir: string) {}

  async start(): Promise<void> {
    const child = spawn(
      braidBin,
      ["serve", "--db", path.join(this.dir, "braid.db"), "--bind", "127.0.0.1:0", "--shutdown-grace-s", "1"],
      { cwd: this.dir, env: process.env, stdio: ["ignore", "ignore", "pipe"] },
    );
    this.child = child;
    this.url = await new Promise<string>((resolve, reject) => {
      child.on("error", (e) => reject(new Error(`cannot start ${braidBin}: ${e.message} (build it: cargo build -p braid-cli)`)));
      child.on("exit", (code) => reject(new Error(`braid serve exited (${code}) before listening:\n${this.log}`)));
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (text: string) => {
        this.log += text;
        // Only a whole address: stderr may arrive cut anywhere.
        const m = /listening on (http:\/\/\S+)\s/.exec(this.log);
        if (m) resolve(m[1]);
      });
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(killer);
  }

  /** A request to the API; JSON in and out, no `Origin` header (like the CLI). */
  async request<T = unknown>(method: string, route: string, body?: unknown): Promise<Answer<T>> {
    const init: RequestInit = { method };
    if (typeof body === "string") {
      init.body = body;
      init.headers = { "content-type": "application/yaml" };
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { "content-type": "application/json" };
    }
    const res = await fetch(this.url + route, init);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed as T };
  }

  /** Saves a bundle (an object, or YAML text); fails unless it is accepted. */
  async saveBundle(bundle: object | string): Promise<SavedDefinition> {
    const a = await this.request<SavedDefinition>("POST", "/api/workflow-defs", bundle);
    if (a.status !== 200 && a.status !== 201) throw new Error(`saving the bundle: ${a.status} ${JSON.stringify(a.body)}`);
    return a.body;
  }

  /** Starts a run of the latest (or given) version; returns its id. */
  async startRun(workflow: string, input: object = {}, version?: number): Promise<string> {
    const a = await this.request<{ run_id: string }>("POST", `/api/workflow-defs/${encodeURIComponent(workflow)}/runs`, {
      input,
      ...(version === undefined ? {} : { version }),
    });
    if (a.status !== 201) throw new Error(`starting a run of ${workflow}: ${a.status} ${JSON.stringify(a.body)}`);
    return a.body.run_id;
  }

  /** The run's body. */
  async run(id: string): Promise<RunBody> {
    const a = await this.request<RunBody>("GET", `/api/runs/${encodeURIComponent(id)}`);
    if (a.status !== 200) throw new Error(`reading run ${id}: ${a.status} ${JSON.stringify(a.body)}`);
    return a.body;
  }

  /** Runs a workflow to its end (`?wait=true`) and returns the run's body. */
  async runToEnd(workflow: string, input: object = {}): Promise<RunBody> {
    const a = await this.request<RunBody>("POST", `/api/workflow-defs/${encodeURIComponent(workflow)}/runs?wait=true&timeout_s=30`, {
      input,
    });
    if (a.status !== 201) throw new Error(`running ${workflow}: ${a.status} ${JSON.stringify(a.body)}`);
    return a.body;
  }

  /**
   * Waits for a run started earlier to end and returns its body, reading
   * its status every 50 ms (a wait on the server's state, bounded by
   * `timeoutMs`).
   */
  async waitForRun(id: string, timeoutMs = 20_000): Promise<RunBody> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = await this.run(id);
      if (run.status !== "running" && run.status !== "waiting") return run;
      if (Date.now() > deadline) throw new Error(`run ${id} still ${run.status} after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
