/**
 * Issue 11, finding 6: denial of service before authentication. The guarded listener caps
 * connections (per address and in total, never refusing the cluster's own addresses), closes
 * a connection whose request head is late, and the authentication reads at most 64 KiB of a
 * body within a deadline.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { type AuthVariables, hmacAuth, MAX_BODY_BYTES, RequestVerifier } from "../src/peer/auth.ts";
import { PeerClient } from "../src/peer/client.ts";
import { serveHttpGuarded } from "../src/peer/conn_guard.ts";

const SECRET = "conn-guard-test-secret-0123456789";

async function withGuarded(
  opts: { maxPerAddress?: number; maxConns?: number; trusted?: Set<string> },
  fn: (
    port: number,
    stats: () => { open: number; refused: number; headTimeouts: number },
  ) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "baton-guard-test-" });
  const app = new Hono<{ Variables: AuthVariables }>();
  app.use("/v1/*", hmacAuth(new RequestVerifier(SECRET)));
  app.post("/v1/echo", (c) => c.json({ peer: c.get("peer") }));
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const s = await serveHttpGuarded({
    hostname: "127.0.0.1",
    port,
    socketPath: `${dir}/api.sock`,
    headerTimeoutMs: 300,
    ...opts,
  }, app.fetch);
  try {
    await fn(port, () => s.guard.stats());
  } finally {
    await s.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Resolves when the server closes `conn` (read returns null or fails). */
async function closedBy(conn: Deno.Conn, withinMs: number): Promise<boolean> {
  const buf = new Uint8Array(1024);
  const end = Date.now() + withinMs;
  try {
    while (Date.now() < end) {
      const n = await Promise.race([
        conn.read(buf),
        new Promise<"wait">((r) => setTimeout(() => r("wait"), end - Date.now())),
      ]);
      if (n === null) return true;
      if (n === "wait") return false;
    }
  } catch {
    return true;
  }
  return false;
}

Deno.test("guard: a signed request and its signed reply pass through the guard", async () => {
  await withGuarded({}, async (port) => {
    const client = new PeerClient({ node: "alpha", secret: SECRET, timeoutMs: 5_000 });
    assert.deepEqual(await client.post(`http://127.0.0.1:${port}`, "/v1/echo", {}), {
      peer: "alpha",
    });
    client.close();
  });
});

Deno.test("guard: a connection that sends half a request head is closed after the header deadline", async () => {
  await withGuarded({}, async (port, stats) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("POST /v1/heartbeat HTTP/1.1\r\nHost: x\r\n"));
    assert.equal(await closedBy(conn, 5_000), true, "still open after 5 s (deadline 300 ms)");
    conn.close();
    assert.equal(stats().headTimeouts, 1);
  });
});

Deno.test("guard: more connections from one address than maxPerAddress are refused at once", async () => {
  await withGuarded({ maxPerAddress: 4 }, async (port, stats) => {
    const conns: Deno.Conn[] = [];
    for (let i = 0; i < 4; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    const extra = await Deno.connect({ hostname: "127.0.0.1", port });
    assert.equal(await closedBy(extra, 2_000), true);
    assert.equal(stats().refused, 1);
    for (const c of [...conns, extra]) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  });
});

Deno.test("guard: a trusted address (a node of the cluster) is not refused by the caps", async () => {
  await withGuarded(
    { maxPerAddress: 2, maxConns: 2, trusted: new Set(["127.0.0.1"]) },
    async (port, stats) => {
      const conns: Deno.Conn[] = [];
      for (let i = 0; i < 5; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(stats().refused, 0);
      for (const c of conns) c.close();
    },
  );
});

Deno.test("hmacAuth: a body larger than 64 KiB is refused with 413 before the signature", async () => {
  await withGuarded({}, async (port) => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/echo`, {
      method: "POST",
      body: "x".repeat(MAX_BODY_BYTES + 1),
    });
    assert.equal(res.status, 413);
    await res.body?.cancel();
  });
});

Deno.test("hmacAuth: a body that trickles in is cut off by the body deadline", async () => {
  await withGuarded({}, async (port) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(
      new TextEncoder().encode(
        "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n0123456789",
      ),
    );
    const buf = new Uint8Array(4096);
    const t0 = Date.now();
    const n = await Promise.race([
      conn.read(buf),
      new Promise<null>((r) => setTimeout(() => r(null), 8_000)),
    ]);
    assert.ok(n !== null && n > 0, "no answer to a stalled body");
    assert.match(new TextDecoder().decode(buf.subarray(0, n)), /^HTTP\/1\.1 400/);
    assert.ok(Date.now() - t0 < 8_000);
    conn.close();
  });
});
