import assert from "node:assert/strict";
import { parseSampleArgs } from "../examples/sample_app.ts";

const APP = new URL("../examples/sample_app.ts", import.meta.url).pathname;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A running sample app with its collected stdout. */
class Sample {
  readonly url: string;
  readonly child: Deno.ChildProcess;
  #out = "";
  #drained: Promise<void>;

  constructor(args: string[], env: Record<string, string> = {}) {
    const port = freePort();
    this.url = `http://127.0.0.1:${port}`;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-env",
        APP,
        "--port",
        String(port),
        "--hostname",
        "127.0.0.1",
        ...args,
      ],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.child = child;
    this.#drained = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) this.#out += decoder.decode(chunk);
    })();
  }

  get stdout(): string {
    return this.#out;
  }

  /** Polls /health until the app answers at all (any status). */
  async ready(): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (true) {
      try {
        const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(2000) });
        await res.body?.cancel();
        return;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`expected the sample app to answer: ${e}`);
        await sleep(50);
      }
    }
  }

  async get(path: string, method = "GET"): Promise<{ status: number; body: string }> {
    const res = await fetch(`${this.url}${path}`, { method, signal: AbortSignal.timeout(5000) });
    return { status: res.status, body: await res.text() };
  }

  /** Waits for the exit (bounded), then for stdout to be fully read. */
  async exit(boundMs = 10_000): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`expected an exit within ${boundMs}ms`)), boundMs);
    });
    try {
      const status = await Promise.race([this.child.status, limit]);
      await this.#drained;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the app if still running; for finally blocks. */
  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await this.child.status;
    await this.#drained;
  }
}

Deno.test("sample app /health says name, pid, epoch and node, and logs the request", async () => {
  const app = new Sample(["--name", "web"], { BATON_EPOCH: "7", BATON_NODE: "n1" });
  try {
    await app.ready();
    const res = await app.get("/health");
    assert.equal(res.status, 200);
    assert.equal(res.body.trim(), `ok web pid=${app.child.pid} epoch=7 node=n1`);
    assert.equal((await app.get("/")).status, 200);
    const info = JSON.parse((await app.get("/info")).body);
    assert.equal(info.name, "web");
    assert.equal(info.pid, app.child.pid);
    assert.equal(info.epoch, "7");
    assert.equal(info.node, "n1");
    assert.ok(
      !Number.isNaN(Date.parse(info.startedAt)),
      `expected a date, found ${info.startedAt}`,
    );
  } finally {
    await app.kill();
  }
  assert.match(app.stdout, /GET \/health 200/);
  assert.match(app.stdout, /GET \/info 200/);
});

Deno.test("sample app answers 503 on /health after /error and 200 after /recover", async () => {
  const app = new Sample([]);
  try {
    await app.ready();
    assert.equal((await app.get("/error", "POST")).status, 200);
    assert.deepEqual(await app.get("/health"), { status: 503, body: "error mode\n" });
    assert.equal((await app.get("/recover", "POST")).status, 200);
    assert.equal((await app.get("/health")).status, 200);
  } finally {
    await app.kill();
  }
});

Deno.test("sample app /crash answers, then exits with code 1", async () => {
  const app = new Sample([]);
  try {
    await app.ready();
    assert.equal((await app.get("/crash", "POST")).status, 200);
    const status = await app.exit();
    assert.equal(status.code, 1);
  } finally {
    await app.kill();
  }
});

Deno.test("sample app /hang stops answering requests while the process stays alive", async () => {
  const app = new Sample(["--name", "stuck"]);
  try {
    await app.ready();
    assert.equal((await app.get("/hang", "POST")).status, 200);
    await assert.rejects(
      fetch(`${app.url}/health`, { signal: AbortSignal.timeout(500) }),
      (e: Error) => e.name === "TimeoutError",
    );
    // Still alive: it takes SIGTERM and exits gracefully.
    app.child.kill("SIGTERM");
    const status = await app.exit();
    assert.equal(status.code, 0);
    assert.match(app.stdout, /stuck stopping/);
  } finally {
    await app.kill();
  }
});

Deno.test("sample app exits 0 and logs stopping on SIGTERM", async () => {
  const app = new Sample(["--name", "web"]);
  try {
    await app.ready();
    app.child.kill("SIGTERM");
    assert.equal((await app.exit()).code, 0);
    assert.match(app.stdout, /web stopping/);
  } finally {
    await app.kill();
  }
});

Deno.test("sample app with --ignore-sigterm survives SIGTERM until SIGKILL", async () => {
  const app = new Sample(["--ignore-sigterm"]);
  try {
    await app.ready();
    app.child.kill("SIGTERM");
    const deadline = Date.now() + 10_000;
    while (!app.stdout.includes("ignoring SIGTERM")) {
      if (Date.now() > deadline) throw new Error("expected the app to log that it ignores SIGTERM");
      await sleep(20);
    }
    assert.equal((await app.get("/health")).status, 200);
    app.child.kill("SIGKILL");
    assert.equal((await app.exit()).signal, "SIGKILL");
  } finally {
    await app.kill();
  }
});

Deno.test("sample app with --crash-after exits with code 1 by itself", async () => {
  const app = new Sample(["--crash-after", "300"]);
  try {
    const status = await app.exit(20_000);
    assert.equal(status.code, 1);
    assert.match(app.stdout, /crashing after 300ms/);
  } finally {
    await app.kill();
  }
});

Deno.test("parseSampleArgs takes the port from env PORT and rejects bad values", () => {
  assert.deepEqual(parseSampleArgs(["--name", "api"], { PORT: "9000" }), {
    port: 9000,
    hostname: "0.0.0.0",
    name: "api",
    ignoreSigterm: false,
    crashAfterMs: null,
  });
  assert.equal(parseSampleArgs(["--port", "81"], { PORT: "9000" }).port, 81);
  assert.throws(() => parseSampleArgs([], {}), /expected --port/);
  assert.throws(() => parseSampleArgs(["--port", "http"], {}), /whole number, found "http"/);
  assert.throws(() => parseSampleArgs(["--port", "70000"], {}), /0\.\.65535, found 70000/);
});
