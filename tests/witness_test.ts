import assert from "node:assert/strict";
import { signRequest } from "../src/peer/auth.ts";
import {
  createWitnessApp,
  WITNESS_BEAT_PATH,
  WITNESS_VIEW_PATH,
  type WitnessView,
} from "../src/witness/witness_app.ts";

const SECRET = "witness-test-secret-0123456";

function setup() {
  const clock = { t: 10_000 };
  const app = createWitnessApp({ secret: SECRET, now: () => clock.t, leaseMs: 1_000 });
  const beat = async (
    body: unknown,
    opts: { signer?: string; secret?: string; raw?: string } = {},
  ) => {
    const text = opts.raw ?? JSON.stringify(body);
    const signer = opts.signer ??
      (typeof body === "object" && body !== null && "node" in body
        ? String((body as { node: unknown }).node)
        : "alpha");
    const headers = await signRequest(
      opts.secret ?? SECRET,
      signer,
      "POST",
      WITNESS_BEAT_PATH,
      text,
    );
    return app.request(WITNESS_BEAT_PATH, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: text,
    });
  };
  const view = async (): Promise<WitnessView> => (await app.request(WITNESS_VIEW_PATH)).json();
  return { app, clock, beat, view };
}

Deno.test("witness GET / identifies a baton witness", async () => {
  const { app } = setup();
  const res = await app.request("/");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { witness: "baton" });
});

Deno.test("witness view starts empty with no active", async () => {
  const { view } = setup();
  assert.deepEqual(await view(), { witness: "baton", nodes: {}, active: null, maxEpoch: 0 });
});

Deno.test("witness beat records the node and answers with the view", async () => {
  const { beat, view } = setup();
  const res = await beat({ node: "alpha", role: "active", epoch: 4 });
  assert.equal(res.status, 200);
  const expected = {
    witness: "baton",
    nodes: { alpha: { role: "active", epoch: 4, ageMs: 0 } },
    active: { node: "alpha", epoch: 4, ageMs: 0 },
    maxEpoch: 4,
  };
  assert.deepEqual(await res.json(), { ok: true, ...expected });
  assert.deepEqual(await view(), expected);
});

Deno.test("witness ageMs follows the injected clock and resets on each beat", async () => {
  const { beat, view, clock } = setup();
  await beat({ node: "alpha", role: "active", epoch: 1 });
  clock.t += 1_500;
  await beat({ node: "beta", role: "standby", epoch: 1 });
  clock.t += 700;
  const v = await view();
  assert.deepEqual(v.nodes, {
    alpha: { role: "active", epoch: 1, ageMs: 2_200 },
    beta: { role: "standby", epoch: 1, ageMs: 700 },
  });
  assert.deepEqual(v.active, { node: "alpha", epoch: 1, ageMs: 2_200 });
  await beat({ node: "alpha", role: "active", epoch: 1 });
  assert.equal((await view()).nodes.alpha?.ageMs, 0);
});

Deno.test("witness active is the highest epoch among active claims, then the freshest", async () => {
  const { beat, view, clock } = setup();
  await beat({ node: "beta", role: "active", epoch: 7 });
  clock.t += 1_000;
  await beat({ node: "alpha", role: "active", epoch: 6 }); // fresher, but older epoch
  assert.deepEqual((await view()).active, { node: "beta", epoch: 7, ageMs: 1_000 });

  await beat({ node: "gamma", role: "active", epoch: 7 }); // same epoch, fresher
  assert.deepEqual((await view()).active, { node: "gamma", epoch: 7, ageMs: 0 });
});

Deno.test("witness forgets an active claim once the node beats as standby", async () => {
  const { beat, view } = setup();
  await beat({ node: "alpha", role: "active", epoch: 2 });
  await beat({ node: "beta", role: "standby", epoch: 2 });
  await beat({ node: "alpha", role: "standby", epoch: 2 });
  assert.equal((await view()).active, null);
  await beat({ node: "beta", role: "active", epoch: 3 });
  assert.deepEqual((await view()).active, { node: "beta", epoch: 3, ageMs: 0 });
});

Deno.test("witness beat rejects malformed JSON and wrong shapes with 400 and a reason", async () => {
  const { beat, view } = setup();
  const notJson = await beat(null, { raw: "{not json", signer: "alpha" });
  assert.equal(notJson.status, 400);
  const notJsonBody = await notJson.json();
  assert.equal(notJsonBody.error, "bad request");
  assert.match(notJsonBody.reason, /^expected a JSON body/);

  const cases: Array<[unknown, RegExp]> = [
    [{ node: "alpha", role: "leader", epoch: 1 }, /role/],
    [{ node: "alpha", role: "active", epoch: -1 }, /epoch/],
    [{ node: "alpha", role: "active", epoch: 1.5 }, /epoch/],
    [{ node: "alpha", role: "active" }, /epoch/],
    [{ node: "alpha", role: "active", epoch: 1, extra: true }, /extra/],
    [[1, 2], /body/],
  ];
  for (const [body, reason] of cases) {
    const res = await beat(body, { signer: "alpha" });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.match((await res.json()).reason, reason, JSON.stringify(body));
  }
  assert.deepEqual((await view()).nodes, {}, "nothing was recorded");
});

Deno.test("witness beat rejects a body naming another node than the signer", async () => {
  const { beat, view } = setup();
  const res = await beat({ node: "beta", role: "active", epoch: 9 }, { signer: "alpha" });
  assert.equal(res.status, 400);
  assert.match((await res.json()).reason, /expected node "alpha" \(the signer\), got "beta"/);
  assert.equal((await view()).active, null);
});

Deno.test("witness beat without a valid signature gets 401 and changes nothing", async () => {
  const { app, beat, view } = setup();
  const unsigned = await app.request(WITNESS_BEAT_PATH, {
    method: "POST",
    body: JSON.stringify({ node: "mallory", role: "active", epoch: 99 }),
  });
  assert.equal(unsigned.status, 401);
  assert.equal((await unsigned.json()).error, "unauthorized");

  const wrongSecret = await beat(
    { node: "mallory", role: "active", epoch: 99 },
    { secret: "not-the-cluster-secret" },
  );
  assert.equal(wrongSecret.status, 401);
  assert.deepEqual(await wrongSecret.json(), { error: "unauthorized", reason: "bad signature" });
  assert.deepEqual(await view(), { witness: "baton", nodes: {}, active: null, maxEpoch: 0 });
});

Deno.test("witness beat rejects a replayed beat", async () => {
  const { app, view, clock } = setup();
  const body = JSON.stringify({ node: "alpha", role: "active", epoch: 1 });
  const headers = await signRequest(SECRET, "alpha", "POST", WITNESS_BEAT_PATH, body);
  const first = await app.request(WITNESS_BEAT_PATH, { method: "POST", headers, body });
  assert.equal(first.status, 200);
  clock.t += 5_000;
  const replay = await app.request(WITNESS_BEAT_PATH, { method: "POST", headers, body });
  assert.equal(replay.status, 401);
  assert.deepEqual(await replay.json(), { error: "unauthorized", reason: "replayed" });
  assert.equal((await view()).active?.ageMs, 5_000, "the replay did not refresh alpha");
});

Deno.test("witness answers unknown paths with a JSON 404", async () => {
  const { app } = setup();
  const res = await app.request("/v1/nope");
  assert.equal(res.status, 404);
  assert.equal((await res.json()).error, "not found");
});
