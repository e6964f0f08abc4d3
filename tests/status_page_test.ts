/**
 * The status page, its live stream and /metrics in-process (no sockets): rendering escapes
 * everything and needs no asset, the snapshot is cached per period, live streams are bounded,
 * peers are fetched in the background and their failures shown.
 */
import assert from "node:assert/strict";
import { buildStatus, type StatusDoc } from "../src/agent/status.ts";
import { Metrics } from "../src/metrics/metrics.ts";
import { failureCause } from "../src/metrics/metrics.ts";
import { ClusterView } from "../src/page/cluster_view.ts";
import { MAX_STREAMS, ReadApi } from "../src/page/read_api.ts";
import { age, esc, renderPage } from "../src/page/render.ts";
import { initNodeState } from "../src/core/node_state.ts";
import { parseManifest } from "../src/manifest/load.ts";
import type { Manifest } from "../src/manifest/types.ts";

/** A two-node manifest (alpha, beta, one app `web`) with `cluster` as its cluster line. */
async function twoNodes(cluster = "cluster: { witness: none }"): Promise<Manifest> {
  const r = await parseManifest(
    [
      cluster,
      "nodes:",
      "  alpha: { url: http://127.0.0.1:7401 }",
      "  beta: { url: http://127.0.0.1:7402 }",
      "apps:",
      "  web: { command: [sleep, infinity] }",
    ].join("\n"),
    "/tmp/m.yaml",
  );
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.manifest;
}

async function doc(node = "alpha"): Promise<StatusDoc> {
  const state = initNodeState(node, await twoNodes(), "auto", 0);
  return buildStatus(state, 0, [{
    time: "2026-01-01T10:00:00.000Z",
    node,
    level: "warn",
    app: "web",
    kind: "restart",
    message: "<script>alert(1)</script> exited",
    epoch: 1,
  }]);
}

Deno.test("renderPage escapes every value, loads no asset and shows every node", async () => {
  const self = await doc();
  self.warnings.push("ESCALATION: web <b>");
  const html = renderPage({ self, peers: [], time: "2026-01-01T10:00:01.000Z" }, "/stream");
  assert.ok(!html.includes("<script>alert"), "an event message was not escaped");
  assert.match(html, /&#60;script&#62;alert\(1\)&#60;\/script&#62; exited/);
  assert.match(html, /ESCALATION: web &#60;b&#62;/);
  assert.match(html, /class="warnings"/);
  assert.ok(!/\b(src|href)=/i.test(html), "the page refers to another resource");
  assert.match(html, /data-node="alpha"/);
  assert.match(html, /data-node="beta"/, "a peer never fetched is shown from the heartbeats");
  assert.equal(esc(`a"b'&`), "a&#34;b&#39;&#38;");
  assert.equal(age(null), "—");
  assert.equal(age(1500), "2 s");
});

Deno.test("ClusterView caches per period and fetches peers in the background", async () => {
  const self = await doc();
  let builds = 0;
  let now = 0;
  const asked: string[] = [];
  const beta = await doc("beta");
  let answer: (v: unknown) => void = () => {};
  const view = new ClusterView({
    self: () => (builds++, self),
    get: (url) => {
      asked.push(url);
      return new Promise((r) => (answer = r));
    },
    periodMs: 100,
    now: () => now,
  });
  const s1 = view.snapshot();
  view.snapshot();
  assert.equal(builds, 1, "rebuilt within one period");
  assert.deepEqual(asked, ["http://127.0.0.1:7402"]);
  assert.equal(s1.peers[0]!.status, null);
  now = 150;
  view.snapshot();
  assert.equal(asked.length, 1, "a second fetch while one is in flight");
  answer(beta);
  await new Promise((r) => setTimeout(r, 0));
  now = 300;
  const s2 = view.snapshot();
  assert.equal(s2.peers[0]!.status?.node, "beta");
  assert.equal(asked.length, 2);
  answer({ node: "mallory", apps: [] });
  await new Promise((r) => setTimeout(r, 0));
  now = 450;
  assert.match(view.snapshot().peers[0]!.error!, /did not answer with the status of beta/);
});

Deno.test("ReadApi serves the page, caches /metrics and bounds the live streams", async () => {
  const self = await doc();
  const view = new ClusterView({
    self: () => self,
    get: () => new Promise(() => {}),
    periodMs: 100,
  });
  let scrapes = 0;
  const metrics = new Metrics(() => (scrapes++, self), { node: "alpha", cluster: "c" });
  const api = new ReadApi({ view, metrics, periodMs: 100 });
  try {
    const page = await api.app.request("/");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /text\/html/);
    assert.match(await page.text(), /<main id="m">/);
    const m1 = await (await api.app.request("/metrics")).text();
    const m2 = await (await api.app.request("/metrics")).text();
    assert.equal(scrapes, 1, "two scrapes within 250 ms built the metrics twice");
    assert.equal(m1, m2);
    assert.match(m1, /baton_app_up\{app="web",node="alpha",cluster="c"\} 0/);
    const streams: Response[] = [];
    for (let i = 0; i < MAX_STREAMS; i++) streams.push(await api.app.request("/stream"));
    assert.ok(streams.every((r) => r.status === 200));
    assert.equal(api.streams, MAX_STREAMS);
    const over = await api.app.request("/stream");
    assert.equal(over.status, 503);
    await over.body?.cancel();
    const first = await streams[0]!.body!.getReader().read();
    assert.match(new TextDecoder().decode(first.value), /^retry: 2000\ndata: "/);
    for (const r of streams) await r.body?.cancel().catch(() => {});
  } finally {
    api.close();
  }
  assert.equal(api.streams, 0);
});

Deno.test("failureCause names the cause from the core's reason", () => {
  assert.equal(failureCause("cannot start: not found"), "start");
  assert.equal(failureCause("http check failed 3 time(s) in a row: HTTP 500; restarting"), "check");
  assert.equal(failureCause("pid 12 killed by SIGKILL; restarting"), "exit");
});

Deno.test("Metrics: baton_witness_up follows the witness's last answer (deadAfter), epoch and role follow status", async () => {
  const m = await twoNodes(
    "cluster: { witness: { url: http://127.0.0.1:7409 }, heartbeat: { deadAfter: 1s } }",
  );
  const state = initNodeState("alpha", m, "auto", 0);
  state.witness.lastOkAt = 10_000;
  let now = 10_500;
  const labels = { node: "alpha", cluster: "c" };
  const text = () => new Metrics(() => buildStatus(state, now, []), labels).text();
  const up =
    /^baton_witness_up\{url="http:\/\/127\.0\.0\.1:7409",node="alpha",cluster="c"\} (\d)$/m;
  assert.equal(up.exec(await text())?.[1], "1");
  now = 11_001;
  assert.equal(up.exec(await text())?.[1], "0", "a witness silent for deadAfter is down");
  assert.match(await text(), /^baton_node_epoch\{node="alpha",cluster="c"\} 0$/m);
  assert.match(await text(), /^baton_node_role\{role="standby",node="alpha",cluster="c"\} 1$/m);
});
