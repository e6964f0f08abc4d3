/**
 * Issue 11, finding 2: replies are authenticated too. Every reply to a signed request carries
 * a signature bound to the request's nonce, the status code and the body; the client treats an
 * unsigned or mismatched reply as no reply at all, and the core ignores epochs the cluster
 * cannot have reached.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  type AuthVariables,
  HEADER_NONCE,
  HEADER_REPLY_SIGNATURE,
  hmacAuth,
  RequestVerifier,
  signReply,
} from "../src/peer/auth.ts";
import { PeerClient, PeerError } from "../src/peer/client.ts";
import { MAX_EPOCH_JUMP } from "../src/core/node_state.ts";
import { appSpec, boot, makeManifest, runCluster, stops } from "./helpers/core_fixtures.ts";

const SECRET = "reply-auth-test-secret-0123456789";

/** A loopback server whose POST /v1/heartbeat answers with `answer(nonce)`. */
async function withForger(
  answer: (nonce: string) => Promise<Response>,
  fn: (url: string) => Promise<void>,
): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.text();
    return await answer(req.headers.get(HEADER_NONCE) ?? "");
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    await server.shutdown();
  }
}

const FORGED = JSON.stringify({
  node: "beta",
  role: "active",
  roleSeq: 9,
  hears: [],
  epoch: Number.MAX_SAFE_INTEGER,
  priority: 1,
  maintenance: false,
  manifestHash: "x",
});

async function expectUnreachable(p: Promise<unknown>): Promise<PeerError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof PeerError, `expected a PeerError, got ${err}`);
    assert.equal(err.status, 0, "an unauthenticated reply is as good as none");
    return err;
  }
  assert.fail("a forged reply was accepted");
}

const client = () => new PeerClient({ node: "alpha", secret: SECRET, timeoutMs: 5_000 });

Deno.test("PeerClient rejects an unsigned 200 reply (a forged heartbeat reply with epoch 2^53-1)", async () => {
  await withForger(
    () =>
      Promise.resolve(new Response(FORGED, { headers: { "content-type": "application/json" } })),
    async (url) => {
      const err = await expectUnreachable(client().post(url, "/v1/heartbeat", {}));
      assert.match(err.message, /reply not signed/);
      assert.equal(err.httpStatus, 200);
    },
  );
});

Deno.test("PeerClient rejects a reply signed for another request's nonce", async () => {
  await withForger(async () => {
    const sig = await signReply(SECRET, "0".repeat(32), 200, FORGED);
    return new Response(FORGED, { headers: { [HEADER_REPLY_SIGNATURE]: sig } });
  }, async (url) => {
    const err = await expectUnreachable(client().post(url, "/v1/heartbeat", {}));
    assert.match(err.message, /signature does not match/);
  });
});

Deno.test("PeerClient rejects a signed reply whose status or body was changed", async () => {
  for (const tamper of ["status", "body"] as const) {
    await withForger(async (nonce) => {
      const sig = await signReply(SECRET, nonce, 409, FORGED);
      const body = tamper === "body" ? FORGED.replace('"beta"', '"gamma"') : FORGED;
      return new Response(body, {
        status: tamper === "status" ? 200 : 409,
        headers: { [HEADER_REPLY_SIGNATURE]: sig },
      });
    }, async (url) => {
      await expectUnreachable(client().post(url, "/v1/heartbeat", {}));
    });
  }
});

Deno.test("PeerClient rejects a witness reply {granted: true} from a secretless impostor", async () => {
  await withForger(
    () =>
      Promise.resolve(Response.json({ witness: "baton", granted: true, active: null, nodes: {} })),
    async (url) => {
      await expectUnreachable(client().post(url, "/v1/witness/claim", {}));
    },
  );
});

Deno.test("hmacAuth signs every reply (2xx and 4xx) for the request's nonce; the client accepts it", async () => {
  const app = new Hono<{ Variables: AuthVariables }>();
  app.use("/v1/*", hmacAuth(new RequestVerifier(SECRET)));
  app.post("/v1/ok", (c) => c.json({ ok: true }));
  app.post("/v1/refuse", (c) => c.json({ ok: false, error: "no" }, 409));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  try {
    assert.deepEqual(await client().post(url, "/v1/ok", {}), { ok: true });
    try {
      await client().post(url, "/v1/refuse", {});
      assert.fail("409 expected");
    } catch (err) {
      assert.ok(err instanceof PeerError);
      assert.equal(err.status, 409, "a signed refusal keeps its status");
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("onPeerInfo: an active ignores an epoch beyond what the cluster can have reached", () => {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: [appSpec("web")] });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  runCluster([a, b], 0, 8_000);
  assert.equal(a.state.role, "active");
  for (const epoch of [Number.MAX_SAFE_INTEGER, a.state.epoch + MAX_EPOCH_JUMP + 1]) {
    const acts = a.hear({ ...b.info(), epoch }, 8_100);
    assert.equal(a.state.role, "active", `epoch ${epoch} must not make alpha step down`);
    assert.deepEqual(stops(acts), []);
    assert.equal(a.state.epoch, 1);
  }
  // A legitimate jump (another node took over while we were away) still counts.
  a.hear({ ...b.info(), role: "active", epoch: 40 }, 8_200);
  assert.equal(a.state.role, "standby");
});
