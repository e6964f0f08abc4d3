/**
 * In-process tests of the node API (src/peer/peer_api.ts) with a fake agent: every POST route
 * is authenticated (missing, forged, stale, tampered and replayed signatures get 401 and reach
 * no agent), bodies are validated (400 with a reason), peer-only routes refuse non-peers (403),
 * unknown routes are 404 JSON, and the reads are open.
 */
import assert from "node:assert/strict";
import type { ReloadResult, Reply } from "../src/agent/agent.ts";
import type { StatusDoc } from "../src/agent/status.ts";
import type { Command, Event, NodeInfo } from "../src/core/types.ts";
import { RequestVerifier, signRequest } from "../src/peer/auth.ts";
import { type ApiAgent, createPeerApi } from "../src/peer/peer_api.ts";
import type { EventRecord } from "../src/store/event_log.ts";

const SECRET = "peer-api-test-secret-0123456789";
const SELF = "alpha";
const PEER = "beta";

/** Everything the fake agent was asked to do. */
interface Seen {
  dispatched: Event[];
  requested: Event[];
  commands: Command[];
  reloads: number;
}

const INFO: NodeInfo = {
  node: SELF,
  role: "active",
  roleSeq: 1,
  hears: [],
  epoch: 3,
  priority: 100,
  maintenance: false,
  manifestHash: "abc123",
};

const EVENTS: EventRecord[] = [
  {
    time: "2026-01-01T00:00:00.000Z",
    node: SELF,
    level: "info",
    app: null,
    kind: "boot",
    message: "no previous state: starting fresh",
    epoch: 0,
  },
];

function fakeAgent(
  opts: { reply?: Reply; reload?: ReloadResult } = {},
): { agent: ApiAgent; seen: Seen } {
  const seen: Seen = { dispatched: [], requested: [], commands: [], reloads: 0 };
  const reply = opts.reply ?? { status: 200, body: { ok: true } };
  const agent: ApiAgent = {
    status: () => ({ node: SELF, role: "active", epoch: 3 }) as unknown as StatusDoc,
    info: () => INFO,
    dispatch: (e) => {
      seen.dispatched.push(e);
    },
    request: (make) => {
      seen.requested.push(make("req-1"));
      return Promise.resolve(reply);
    },
    command: (c) => {
      seen.commands.push(c);
      return Promise.resolve(reply);
    },
    reload: () => {
      seen.reloads++;
      return Promise.resolve(opts.reload ?? { ok: true, hash: "abc123", warnings: [] });
    },
    events: { recent: (n) => EVENTS.slice(-n) },
    state: { self: SELF, peers: { [PEER]: {} } },
  };
  return { agent, seen };
}

function total(seen: Seen): number {
  return seen.dispatched.length + seen.requested.length + seen.commands.length + seen.reloads;
}

function setup(opts: { reply?: Reply; reload?: ReloadResult } = {}) {
  const { agent, seen } = fakeAgent(opts);
  const app = createPeerApi(agent, new RequestVerifier(SECRET));
  return { app, seen };
}

/** A valid body for each POST route, signed by the peer unless said otherwise. */
const ROUTES: { path: string; body: unknown }[] = [
  { path: "/v1/heartbeat", body: { ...INFO, node: PEER, role: "standby", priority: 50 } },
  { path: "/v1/takeover/prepare", body: { epoch: 3, reason: "test" } },
  { path: "/v1/takeover/commit", body: { epoch: 3, reason: "test" } },
  { path: "/v1/switchover", body: { to: PEER } },
  { path: "/v1/maintenance", body: { on: true } },
  { path: "/v1/clear", body: {} },
  { path: "/v1/reload", body: {} },
];

interface SendOpts {
  signer?: string;
  secret?: string;
  now?: number;
  /** Sign this text but send `text`. */
  signedText?: string;
  headers?: Record<string, string> | null;
}

async function signed(
  path: string,
  text: string,
  opts: SendOpts = {},
): Promise<{ headers: Record<string, string>; body: string }> {
  const headers = opts.headers !== undefined && opts.headers !== null
    ? opts.headers
    : await signRequest(
      opts.secret ?? SECRET,
      opts.signer ?? PEER,
      "POST",
      path,
      opts.signedText ?? text,
      opts.now ?? Date.now(),
    );
  return { headers: { ...headers, "content-type": "application/json" }, body: text };
}

async function post(
  app: ReturnType<typeof setup>["app"],
  path: string,
  text: string,
  opts: SendOpts = {},
): Promise<Response> {
  const req = opts.headers === null
    ? { headers: { "content-type": "application/json" }, body: text }
    : await signed(path, text, opts);
  return await app.request(path, { method: "POST", ...req });
}

async function json(res: Response): Promise<Record<string, unknown>> {
  const text = await res.text();
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`expected a JSON body, found ${JSON.stringify(text)}`);
  }
}

// ---------------------------------------------------------------- authentication

for (const route of ROUTES) {
  const text = JSON.stringify(route.body);

  Deno.test(`peer api POST ${route.path} accepts a valid signature and reaches the agent`, async () => {
    const { app, seen } = setup();
    const res = await post(app, route.path, text);
    assert.equal(res.status, 200, JSON.stringify(await json(res.clone())));
    await res.body?.cancel();
    assert.equal(total(seen), 1);
  });

  Deno.test(`peer api POST ${route.path} answers 401 without a signature and reaches no agent`, async () => {
    const { app, seen } = setup();
    const res = await post(app, route.path, text, { headers: null });
    assert.equal(res.status, 401);
    const body = await json(res);
    assert.equal(body.error, "unauthorized");
    assert.match(String(body.reason), /missing header/);
    assert.equal(total(seen), 0);
  });

  Deno.test(`peer api POST ${route.path} answers 401 to a forged signature and reaches no agent`, async () => {
    const { app, seen } = setup();
    const res = await post(app, route.path, text, { secret: "not-the-cluster-secret-xyz" });
    assert.equal(res.status, 401);
    assert.equal((await json(res)).reason, "bad signature");
    assert.equal(total(seen), 0);
  });

  Deno.test(`peer api POST ${route.path} answers 401 to a stale signature and reaches no agent`, async () => {
    const { app, seen } = setup();
    const res = await post(app, route.path, text, { now: Date.now() - 10 * 60_000 });
    assert.equal(res.status, 401);
    assert.equal((await json(res)).reason, "stale");
    assert.equal(total(seen), 0);
  });

  Deno.test(`peer api POST ${route.path} answers 401 to a body other than the signed one`, async () => {
    const { app, seen } = setup();
    const res = await post(app, route.path, text, { signedText: text + " " });
    assert.equal(res.status, 401);
    assert.equal((await json(res)).reason, "bad signature");
    assert.equal(total(seen), 0);
  });

  Deno.test(`peer api POST ${route.path} answers 401 to a replayed request and reaches the agent once`, async () => {
    const { app, seen } = setup();
    const req = await signed(route.path, text);
    const first = await app.request(route.path, { method: "POST", ...req });
    assert.equal(first.status, 200);
    await first.body?.cancel();
    assert.equal(total(seen), 1);
    const again = await app.request(route.path, { method: "POST", ...req });
    assert.equal(again.status, 401);
    assert.equal((await json(again)).reason, "replayed");
    assert.equal(total(seen), 1);
  });
}

Deno.test("peer api replay is caught across routes: a nonce used on one route is refused on another", async () => {
  const { app, seen } = setup();
  const text = JSON.stringify({ on: false });
  const req = await signed("/v1/maintenance", text);
  const first = await app.request("/v1/maintenance", { method: "POST", ...req });
  assert.equal(first.status, 200);
  await first.body?.cancel();
  // Same headers on another path: the signature covers the path, so it is a bad signature.
  const moved = await app.request("/v1/switchover", { method: "POST", ...req });
  assert.equal(moved.status, 401);
  await moved.body?.cancel();
  assert.equal(seen.commands.length, 1);
});

// ---------------------------------------------------------------- peer-only routes

for (const path of ["/v1/heartbeat", "/v1/takeover/prepare", "/v1/takeover/commit"]) {
  const route = ROUTES.find((r) => r.path === path)!;

  Deno.test(`peer api POST ${path} answers 403 to a signer that is not a peer`, async () => {
    const { app, seen } = setup();
    const body = path === "/v1/heartbeat"
      ? { ...(route.body as NodeInfo), node: "gamma" }
      : route.body;
    const res = await post(app, path, JSON.stringify(body), { signer: "gamma" });
    assert.equal(res.status, 403);
    assert.match(String((await json(res)).error), /gamma is not a peer of alpha/);
    assert.equal(total(seen), 0);
  });

  Deno.test(`peer api POST ${path} answers 403 to a request signed as the node itself`, async () => {
    const { app, seen } = setup();
    const body = path === "/v1/heartbeat"
      ? { ...(route.body as NodeInfo), node: SELF }
      : route.body;
    const res = await post(app, path, JSON.stringify(body), { signer: SELF });
    assert.equal(res.status, 403);
    await res.body?.cancel();
    assert.equal(total(seen), 0);
  });
}

Deno.test("peer api operator routes accept any node of the cluster secret as signer", async () => {
  const { app, seen } = setup();
  const res = await post(app, "/v1/maintenance", JSON.stringify({ on: true }), { signer: SELF });
  assert.equal(res.status, 200);
  await res.body?.cancel();
  assert.deepEqual(seen.commands, [{ type: "maintenance", on: true }]);
});

// ---------------------------------------------------------------- bodies

const BAD_BODIES: { path: string; text: string; reason: RegExp }[] = [
  { path: "/v1/heartbeat", text: "{not json", reason: /body is not JSON/ },
  { path: "/v1/heartbeat", text: JSON.stringify({ node: PEER }), reason: /bad body: role/ },
  {
    path: "/v1/heartbeat",
    text: JSON.stringify({ ...INFO, node: PEER, role: "boss" }),
    reason: /bad body: role/,
  },
  {
    path: "/v1/heartbeat",
    text: JSON.stringify({ ...INFO, node: PEER, extra: 1 }),
    reason: /bad body/,
  },
  {
    path: "/v1/heartbeat",
    text: JSON.stringify({ ...INFO, node: "gamma" }),
    reason: /signed by beta but names gamma/,
  },
  { path: "/v1/takeover/prepare", text: "[1,2", reason: /body is not JSON/ },
  {
    path: "/v1/takeover/prepare",
    text: JSON.stringify({ epoch: -1, reason: "x" }),
    reason: /bad body: epoch/,
  },
  {
    path: "/v1/takeover/commit",
    text: JSON.stringify({ epoch: 1.5, reason: "x" }),
    reason: /bad body: epoch/,
  },
  { path: "/v1/takeover/commit", text: JSON.stringify({ epoch: 2 }), reason: /bad body: reason/ },
  { path: "/v1/switchover", text: JSON.stringify({ to: 5 }), reason: /bad body: to/ },
  { path: "/v1/switchover", text: JSON.stringify({ to: "../x" }), reason: /bad body: to/ },
  { path: "/v1/maintenance", text: JSON.stringify({ on: "yes" }), reason: /bad body: on/ },
  { path: "/v1/maintenance", text: "", reason: /bad body: on/ },
  { path: "/v1/clear", text: JSON.stringify({ force: true }), reason: /bad body/ },
  { path: "/v1/clear", text: "null", reason: /bad body/ },
  { path: "/v1/reload", text: JSON.stringify([]), reason: /bad body/ },
];

for (const bad of BAD_BODIES) {
  Deno.test(`peer api POST ${bad.path} answers 400 with a reason to ${JSON.stringify(bad.text)}`, async () => {
    const { app, seen } = setup();
    const res = await post(app, bad.path, bad.text);
    assert.equal(res.status, 400);
    const body = await json(res);
    assert.match(String(body.error), bad.reason);
    assert.equal(total(seen), 0);
  });
}

// ---------------------------------------------------------------- what reaches the agent

Deno.test("peer api heartbeat dispatches peer_info and answers with this node's info", async () => {
  const { app, seen } = setup();
  const info = { ...INFO, node: PEER, role: "standby", priority: 50 };
  const res = await post(app, "/v1/heartbeat", JSON.stringify(info));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), INFO);
  assert.deepEqual(seen.dispatched, [{ type: "peer_info", info }]);
});

Deno.test("peer api takeover routes send the signer, epoch and reason to the core", async () => {
  const { app, seen } = setup();
  for (const phase of ["prepare", "commit"]) {
    const res = await post(app, `/v1/takeover/${phase}`, JSON.stringify({ epoch: 7, reason: "r" }));
    assert.equal(res.status, 200);
    await res.body?.cancel();
  }
  assert.deepEqual(seen.requested, [
    { type: "takeover_prepare", id: "req-1", from: PEER, epoch: 7, reason: "r" },
    { type: "takeover_commit", id: "req-1", from: PEER, epoch: 7, reason: "r" },
  ]);
});

Deno.test("peer api passes the core's refusal status and body through", async () => {
  const { app } = setup({
    reply: { status: 409, body: { ok: false, error: "this node is failed" } },
  });
  const res = await post(app, "/v1/takeover/commit", JSON.stringify({ epoch: 7, reason: "r" }));
  assert.equal(res.status, 409);
  assert.deepEqual(await res.json(), { ok: false, error: "this node is failed" });
});

Deno.test("peer api operator commands map to core commands", async () => {
  const { app, seen } = setup();
  for (
    const [path, body] of [
      ["/v1/switchover", {}],
      ["/v1/switchover", { to: PEER }],
      ["/v1/switchover", { to: null }],
      ["/v1/maintenance", { on: false }],
      ["/v1/clear", {}],
    ] as const
  ) {
    const res = await post(app, path, JSON.stringify(body));
    assert.equal(res.status, 200);
    await res.body?.cancel();
  }
  assert.deepEqual(seen.commands, [
    { type: "switchover", to: null },
    { type: "switchover", to: PEER },
    { type: "switchover", to: null },
    { type: "maintenance", on: false },
    { type: "clear" },
  ]);
});

Deno.test("peer api reload answers 422 with the errors of a refused manifest", async () => {
  const { app, seen } = setup({ reload: { ok: false, errors: ["baton.yaml:3: bad"] } });
  const res = await post(app, "/v1/reload", "{}");
  assert.equal(res.status, 422);
  assert.deepEqual(await res.json(), { ok: false, errors: ["baton.yaml:3: bad"] });
  assert.equal(seen.reloads, 1);
});

// ---------------------------------------------------------------- reads and unknown routes

Deno.test("peer api GET /v1/status, /v1/events and /healthz are open without a signature", async () => {
  const { app, seen } = setup();
  const status = await app.request("/v1/status");
  assert.equal(status.status, 200);
  assert.deepEqual(await status.json(), { node: SELF, role: "active", epoch: 3 });
  const events = await app.request("/v1/events?n=5");
  assert.equal(events.status, 200);
  assert.deepEqual(await events.json(), { events: EVENTS });
  const health = await app.request("/healthz");
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { ok: true, node: SELF });
  assert.equal(total(seen), 0);
});

Deno.test("peer api GET /v1/events answers 400 to an n outside 1..1000", async () => {
  const { app } = setup();
  for (const n of ["0", "1001", "abc", "2.5"]) {
    const res = await app.request(`/v1/events?n=${n}`);
    assert.equal(res.status, 400, `n=${n}`);
    assert.match(String((await json(res)).error), /n must be an integer 1\.\.1000/);
  }
});

Deno.test("peer api answers 404 JSON for unknown routes", async () => {
  const { app, seen } = setup();
  for (const [method, path] of [["GET", "/nope"], ["GET", "/v1/nope"], ["POST", "/nope"]]) {
    const res = await app.request(path!, { method: method! });
    assert.equal(res.status, 404, `${method} ${path}`);
    assert.equal(res.headers.get("content-type")?.startsWith("application/json"), true);
    assert.equal((await json(res)).error, `no route ${method} ${path}`);
  }
  // Under /v1 a POST is authenticated before routing: a signed one gets the 404.
  const signedRes = await post(app, "/v1/nope", "{}");
  assert.equal(signedRes.status, 404);
  assert.equal((await json(signedRes)).error, "no route POST /v1/nope");
  const unsigned = await post(app, "/v1/nope", "{}", { headers: null });
  assert.equal(unsigned.status, 401);
  await unsigned.body?.cancel();
  assert.equal(total(seen), 0);
});

Deno.test("peer api GET on a POST-only route is 404 and reaches no agent", async () => {
  const { app, seen } = setup();
  const res = await app.request("/v1/takeover/commit");
  assert.equal(res.status, 404);
  await res.body?.cancel();
  assert.equal(total(seen), 0);
});
