/**
 * Issue 11, findings 1 and 8: the witness kind is explicit. A baton witness counts only when
 * it answers with a valid, signed witness reply; a proxy's 503, a wrong-shaped body or an
 * unsigned reply is *unreachable*. A plain HTTP witness (`kind: http`) is reachable on any
 * HTTP answer. `--mode active` goes through the witness claim too.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { PeerLink } from "../src/agent/peer_link.ts";
import { type AuthVariables, hmacAuth, RequestVerifier } from "../src/peer/auth.ts";
import { PeerClient } from "../src/peer/client.ts";
import { createWitnessApp } from "../src/witness/witness_app.ts";
import type { Event, NodeInfo } from "../src/core/types.ts";
import {
  appSpec,
  boot,
  makeManifest,
  ofType,
  runCluster,
  spawns,
} from "./helpers/core_fixtures.ts";

const SECRET = "witness-kind-test-secret-0123456789";

const INFO: NodeInfo = {
  node: "alpha",
  role: "standby",
  roleSeq: 1,
  hears: [],
  epoch: 1,
  priority: 2,
  maintenance: false,
  manifestHash: "h",
};

/** Beat the witness at `handler` once through a real PeerClient and PeerLink. */
async function beatOnce(
  handler: (req: Request) => Response | Promise<Response>,
  kind: "baton" | "http",
): Promise<Extract<Event, { type: "witness" }>> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  const client = new PeerClient({ node: "alpha", secret: SECRET, timeoutMs: 5_000 });
  try {
    const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, witness: kind });
    m.cluster.witness = { url: `http://127.0.0.1:${server.addr.port}`, kind };
    const got = Promise.withResolvers<Extract<Event, { type: "witness" }>>();
    const link = new PeerLink("alpha", () => m, client, (e) => {
      if (e.type === "witness") got.resolve(e);
    }, () => 0);
    link.witness(INFO);
    return await got.promise;
  } finally {
    await server.shutdown();
  }
}

Deno.test("PeerLink: a baton witness behind a proxy that answers 503 is unreachable, not a plain witness", async () => {
  const ev = await beatOnce(() => new Response("Service Unavailable", { status: 503 }), "baton");
  assert.equal(ev.ok, false);
  assert.equal(ev.kind, null);
});

Deno.test("PeerLink: a signed reply of the wrong shape is no baton witness reply: unreachable", async () => {
  const app = new Hono<{ Variables: AuthVariables }>();
  app.use("/v1/*", hmacAuth(new RequestVerifier(SECRET)));
  app.post("/v1/witness/beat", (c) => c.json({ hello: "world" }));
  const ev = await beatOnce(app.fetch, "baton");
  assert.equal(ev.ok, false);
  assert.match(ev.error ?? "", /not a baton witness reply/);
});

Deno.test("PeerLink: an unsigned well-shaped witness reply (an impostor) is unreachable", async () => {
  const ev = await beatOnce(
    () => Response.json({ ok: true, witness: "baton", nodes: {}, active: null }),
    "baton",
  );
  assert.equal(ev.ok, false);
});

Deno.test("PeerLink: a real baton witness is reachable as baton, with its highest epoch", async () => {
  const app = createWitnessApp({ secret: SECRET, now: () => performance.now(), leaseMs: 1_000 });
  const ev = await beatOnce(app.fetch, "baton");
  assert.equal(ev.ok, true);
  assert.equal(ev.kind, "baton");
  assert.equal(ev.maxEpoch, 1);
});

Deno.test("PeerLink: kind http opts into reachability: any HTTP answer (a 503, a 404) counts", async () => {
  for (const status of [503, 404, 200]) {
    const ev = await beatOnce(() => new Response("x", { status }), "http");
    assert.equal(ev.ok, true, `HTTP ${status}`);
    assert.equal(ev.kind, "http");
  }
});

Deno.test("takeOver: a manifest baton witness makes a standby claim even before the witness ever answered", () => {
  const m = makeManifest({
    nodes: { alpha: 2, beta: 1 },
    apps: [appSpec("web")],
    witness: "baton",
  });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  // A perfect network between the nodes, the witness never answered: no one becomes active
  // without a grant.
  runCluster([a, b], 0, 8_000);
  assert.equal(a.state.role, "standby");
  assert.ok(ofType(a.log, "claim_witness").length > 0, "alpha asked the witness");
  assert.deepEqual(spawns(a.log).filter((s) => s.app === "web"), []);
});

Deno.test("boot --mode active: goes through the witness claim; active only once granted", () => {
  const m = makeManifest({
    nodes: { alpha: 2, beta: 1 },
    apps: [appSpec("web")],
    witness: "baton",
  });
  const b = boot("beta", m, { mode: "active" });
  assert.equal(b.state.role, "standby", "not active before the witness granted it");
  const claims = ofType(b.log, "claim_witness");
  assert.equal(claims.length, 1);
  const epoch = claims[0]!.info.epoch;
  const granted = b.feed({ type: "claim_result", epoch, ok: true, detail: "granted" }, 10);
  assert.equal(b.state.role, "active");
  assert.equal(b.state.epoch, epoch);
  assert.deepEqual(spawns(granted).map((s) => s.app), ["web"]);
});

Deno.test("boot --mode active: a refused claim (another node is active) leaves it standby", () => {
  const m = makeManifest({
    nodes: { alpha: 2, beta: 1 },
    apps: [appSpec("web")],
    witness: "baton",
  });
  const b = boot("beta", m, { mode: "active" });
  const epoch = ofType(b.log, "claim_witness")[0]!.info.epoch;
  b.feed({ type: "claim_result", epoch, ok: false, detail: "alpha is active at epoch 1" }, 10);
  assert.equal(b.state.role, "standby");
  assert.deepEqual(spawns(b.log), []);
});
