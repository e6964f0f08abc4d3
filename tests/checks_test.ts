import assert from "node:assert/strict";
import { runCheck } from "../src/checks/run_check.ts";
import type { ExecCheckSpec } from "../src/checks/exec_check.ts";
import type { HttpCheckSpec } from "../src/checks/http_check.ts";
import type { TcpCheckSpec } from "../src/checks/tcp_check.ts";

const timing = { intervalMs: 1000, timeoutMs: 2000, failures: 1, initialDelayMs: 0 };

function http(url: string, extra: Partial<HttpCheckSpec> = {}): HttpCheckSpec {
  return { type: "http", url, expectStatus: null, expectBody: null, ...timing, ...extra };
}

function tcp(port: number, extra: Partial<TcpCheckSpec> = {}): TcpCheckSpec {
  return { type: "tcp", host: "127.0.0.1", port, ...timing, ...extra };
}

function exec(command: string[], extra: Partial<ExecCheckSpec> = {}): ExecCheckSpec {
  return { type: "exec", command, ...timing, ...extra };
}

/** A loopback server; `release()` lets stalled handlers finish so shutdown can complete. */
async function withServer(
  handler: (req: Request, stalled: Promise<void>) => Response | Promise<Response>,
  body: (url: string) => Promise<void>,
): Promise<void> {
  let release = () => {};
  const stalled = new Promise<void>((resolve) => release = resolve);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => handler(req, stalled),
  );
  try {
    await body(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    release();
    await server.shutdown();
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Resolves with the result, or fails the test if the call did not return in `boundMs`. */
async function bounded<T>(promise: Promise<T>, boundMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`expected a result within ${boundMs}ms`)), boundMs);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("runCheck http passes on 200 and says the status", async () => {
  await withServer(() => new Response("ok"), async (url) => {
    const r = await runCheck(http(`${url}/health`));
    assert.equal(r.ok, true, r.detail);
    assert.match(r.detail, /^HTTP 200 in \d+ms$/);
  });
});

Deno.test("runCheck http fails on 503 when any 2xx is expected", async () => {
  await withServer(() => new Response("down", { status: 503 }), async (url) => {
    const r = await runCheck(http(url));
    assert.deepEqual(r, { ok: false, detail: "HTTP 503 (expected 2xx)" });
  });
});

Deno.test("runCheck http accepts exactly the codes listed in expectStatus", async () => {
  await withServer(() => new Response("teapot", { status: 418 }), async (url) => {
    assert.equal((await runCheck(http(url, { expectStatus: [418] }))).ok, true);
    const r = await runCheck(http(url, { expectStatus: [200, 204] }));
    assert.deepEqual(r, { ok: false, detail: "HTTP 418 (expected 200 or 204)" });
  });
});

Deno.test("runCheck http does not follow redirects: a 3xx fails unless expected", async () => {
  await withServer(
    () => new Response(null, { status: 302, headers: { location: "/x" } }),
    async (url) => {
      assert.equal((await runCheck(http(url))).ok, false);
      assert.equal((await runCheck(http(url, { expectStatus: [302] }))).ok, true);
    },
  );
});

Deno.test("runCheck http checks expectBody as a substring", async () => {
  await withServer(() => new Response("status: healthy\n"), async (url) => {
    assert.equal((await runCheck(http(url, { expectBody: "healthy" }))).ok, true);
    const r = await runCheck(http(url, { expectBody: "ready" }));
    assert.equal(r.ok, false);
    assert.match(r.detail, /^body does not contain "ready"/);
  });
});

Deno.test("runCheck http finds expectBody only within the first 64 KiB", async () => {
  const big = "x".repeat(70 * 1024) + "MARK";
  await withServer(() => new Response(big), async (url) => {
    const r = await runCheck(http(url, { expectBody: "MARK" }));
    assert.equal(r.ok, false, r.detail);
  });
});

Deno.test("runCheck http fails by timeout, in bounded time, when the server never answers", async () => {
  await withServer(async (_req, stalled) => {
    await stalled;
    return new Response("too late");
  }, async (url) => {
    const r = await bounded(runCheck(http(url, { timeoutMs: 200 })), 200 + 5000);
    assert.deepEqual(r, { ok: false, detail: "no reply within 200ms" });
  });
});

Deno.test("runCheck http fails by timeout when headers arrive but the body stalls", async () => {
  await withServer((_req, stalled) => {
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(new TextEncoder().encode("partial "));
        await stalled;
        controller.close();
      },
    });
    return new Response(body);
  }, async (url) => {
    const r = await bounded(runCheck(http(url, { timeoutMs: 300 })), 300 + 5000);
    assert.deepEqual(r, { ok: false, detail: "no reply within 300ms" });
  });
});

Deno.test("runCheck http reports connection refused on a closed port", async () => {
  const r = await runCheck(http(`http://127.0.0.1:${freePort()}/`));
  assert.deepEqual(r, { ok: false, detail: "connection refused" });
});

Deno.test("runCheck http fails (does not throw) on an invalid URL", async () => {
  const r = await runCheck(http("not a url"));
  assert.equal(r.ok, false);
  assert.match(r.detail, /invalid url/i);
});

Deno.test("runCheck tcp passes on an open port and closes the connection", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const accepted = listener.accept();
    const r = await runCheck(tcp(listener.addr.port));
    assert.equal(r.ok, true, r.detail);
    assert.match(r.detail, /^connected in \d+ms$/);
    // The check closed its side: reading the accepted connection sees EOF.
    const conn = await accepted;
    const n = await bounded(conn.read(new Uint8Array(8)), 5000);
    conn.close();
    assert.equal(n, null);
  } finally {
    listener.close();
  }
});

Deno.test("runCheck tcp reports connection refused on a closed port", async () => {
  const r = await runCheck(tcp(freePort()));
  assert.deepEqual(r, { ok: false, detail: "connection refused" });
});

Deno.test("runCheck exec passes on exit 0 and fails on a non-zero exit", async () => {
  assert.deepEqual(await runCheck(exec(["true"])), { ok: true, detail: "exit 0" });
  assert.deepEqual(await runCheck(exec(["false"])), { ok: false, detail: "exit 1" });
});

Deno.test("runCheck exec puts the start of the output into the failure detail", async () => {
  const r = await runCheck(exec(["sh", "-c", "echo 'db not ready' >&2; exit 3"]));
  assert.deepEqual(r, { ok: false, detail: "exit 3: db not ready" });
});

Deno.test("runCheck exec does not block on a command with lots of output", async () => {
  const r = await runCheck(exec(["sh", "-c", "head -c 1000000 /dev/zero; exit 0"], {
    timeoutMs: 10_000,
  }));
  assert.deepEqual(r, { ok: true, detail: "exit 0" });
});

Deno.test("runCheck exec reports a command that cannot be started", async () => {
  const r = await runCheck(exec(["/nonexistent/baton-no-such-command"]));
  assert.equal(r.ok, false);
  assert.match(r.detail, /^cannot run: /);
  const empty = await runCheck(exec([]));
  assert.equal(empty.ok, false);
  assert.match(empty.detail, /^cannot run: /);
});

/** True if the process is gone or a zombie (dead, waiting to be reaped by its parent). */
function isDead(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state === "Z" || state === "X";
  } catch {
    return true;
  }
}

async function waitFor(what: string, cond: () => boolean, boundMs = 5000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`expected ${what} within ${boundMs}ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("runCheck exec kills a stalled command and its grandchildren at the timeout", async () => {
  const pidFile = await Deno.makeTempFile();
  try {
    // The shell starts a background sleep (a grandchild of ours), records its pid, then stalls.
    const script = `sleep 10 & echo $! > ${pidFile}; sleep 10`;
    const r = await bounded(runCheck(exec(["sh", "-c", script], { timeoutMs: 500 })), 500 + 5000);
    assert.deepEqual(r, { ok: false, detail: "no exit within 500ms (killed)" });
    const grandchild = Number((await Deno.readTextFile(pidFile)).trim());
    assert.ok(grandchild > 0, "expected the script to record its background pid");
    await waitFor(`grandchild ${grandchild} to be dead`, () => isDead(grandchild));
  } finally {
    await Deno.remove(pidFile);
  }
});

Deno.test("runCheck exec with sleep 10 and timeout 200ms returns and leaves no sleep", async () => {
  const marker = `baton-exec-check-${crypto.randomUUID()}`;
  // exec -a names the process so we can find it in /proc afterwards.
  const r = await bounded(
    runCheck(exec(["bash", "-c", `exec -a ${marker} sleep 10`], { timeoutMs: 200 })),
    200 + 5000,
  );
  assert.deepEqual(r, { ok: false, detail: "no exit within 200ms (killed)" });
  const alive = () => {
    const found: number[] = [];
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
        if (cmdline.includes(marker) && !isDead(Number(entry.name))) found.push(Number(entry.name));
      } catch {
        // Exited while we looked.
      }
    }
    return found;
  };
  await waitFor("no live process carrying the marker", () => alive().length === 0);
});
