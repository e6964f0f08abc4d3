/**
 * Notifications: which records are announced, the flapping check, the notifier's queues and
 * retries (with a twin delivery), and real deliveries to a local webhook receiver (signed,
 * and one that never answers) and to a command.
 */
import type { RecordKind } from "../src/core/types.ts";
import assert from "node:assert/strict";
import type { NotifySink } from "../src/manifest/types.ts";
import { deliver, eventEnv, SIGNATURE_HEADER, signBody } from "../src/notify/deliver.ts";
import {
  FLAP_CHANGES,
  FlapDetector,
  type NotifyEvent,
  notifyKind,
  toNotification,
} from "../src/notify/event.ts";
import { accepts, Notifier } from "../src/notify/notifier.ts";
import { parseManifest } from "../src/manifest/load.ts";
import type { EventRecord } from "../src/store/event_log.ts";
import { poll } from "../scripts/local_cluster.ts";
import { boot, exchange, makeManifest, records } from "./helpers/core_fixtures.ts";

function rec(kind: RecordKind, over: Partial<EventRecord> = {}): EventRecord {
  return {
    time: "2026-01-01T10:00:00.000Z",
    node: "alpha",
    level: "warn",
    app: "web",
    kind,
    message: "because",
    epoch: 3,
    ...over,
  };
}

function ev(kind: NotifyEvent["kind"] = "restart", level: NotifyEvent["level"] = "warn") {
  const n = toNotification(rec("restart", { level }), { cluster: "c", role: "active" })!;
  return { ...n, kind };
}

function sink(over: Partial<NotifySink> = {}): NotifySink {
  return {
    webhook: "http://127.0.0.1:1/hook",
    exec: null,
    secretFile: null,
    kinds: null,
    level: "info",
    timeoutMs: 1000,
    ...over,
  };
}

Deno.test("notifyKind maps the core's records to the announced kinds", () => {
  assert.equal(notifyKind(rec("restart")), "restart");
  assert.equal(notifyKind(rec("escalation", { level: "error" })), "escalation");
  assert.equal(notifyKind(rec("handover")), "handover_started");
  assert.equal(notifyKind(rec("handover_ready")), null);
  assert.equal(notifyKind(rec("handover_done")), "handover_done");
  assert.equal(notifyKind(rec("vip_conflict", { level: "error" })), "vip_conflict");
  assert.equal(notifyKind(rec("lease_lost", { level: "error" })), "self_fence");
  assert.equal(notifyKind(rec("active", { app: null })), "takeover");
  assert.equal(notifyKind(rec("step_down")), "self_fence");
  assert.equal(notifyKind(rec("fence", { level: "warn" })), null);
  assert.equal(notifyKind(rec("fence", { level: "info" })), "fence_run");
  assert.equal(notifyKind(rec("fence", { level: "error" })), "fence_failed");
  assert.equal(notifyKind(rec("failed", { app: null })), "node_failed");
  assert.equal(notifyKind(rec("failed")), null);
  assert.equal(notifyKind(rec("clear", { message: "cleared: failed → standby" })), "node_cleared");
  assert.equal(notifyKind(rec("clear", { message: "counters cleared" })), null);
  assert.equal(notifyKind(rec("peer_down")), "peer_lost");
  assert.equal(notifyKind(rec("peer_up")), "peer_back");
  assert.equal(notifyKind(rec("witness_down")), "witness_lost");
  assert.equal(notifyKind(rec("witness_up")), "witness_back");
  assert.equal(notifyKind(rec("manifest_mismatch")), "manifest_mismatch");
  assert.equal(notifyKind(rec("maintenance", { message: "maintenance on: x" })), "maintenance_on");
  assert.equal(notifyKind(rec("maintenance", { message: "maintenance off" })), "maintenance_off");
  assert.equal(notifyKind(rec("check_failed")), null);
  const n = toNotification(rec("restart"), { cluster: "prod", role: "active" });
  assert.deepEqual(n, {
    cluster: "prod",
    node: "alpha",
    role: "active",
    epoch: 3,
    app: "web",
    kind: "restart",
    level: "warn",
    reason: "because",
    time: "2026-01-01T10:00:00.000Z",
  });
});

Deno.test("FlapDetector reports a check that changed state 5 times within 5 minutes", () => {
  const f = new FlapDetector();
  const seq: RecordKind[] = [
    "check_failed",
    "check_ok",
    "check_failed",
    "check_failed",
    "check_ok",
    "check_failed",
  ];
  const out = seq.map((k, i) => f.observe(rec(k), i * 1000));
  assert.deepEqual(out.slice(0, -1), [null, null, null, null, null]);
  assert.match(out.at(-1)!, /web changed state 5 times within 5 s: it is flapping/);
  // Changes spread wider than the window are no flapping.
  const g = new FlapDetector();
  let reported = 0;
  for (let i = 0; i < 20; i++) {
    if (g.observe(rec(i % 2 ? "check_ok" : "check_failed"), i * 100_000)) reported++;
  }
  assert.equal(reported, 0);
  assert.equal(FLAP_CHANGES, 5);
});

Deno.test("accepts filters by kind and lowest level", () => {
  const t = (s: Partial<NotifySink>) => ({ sink: sink(s), key: null });
  assert.equal(accepts(t({}), ev("restart", "info")), true);
  assert.equal(accepts(t({ kinds: ["takeover"] }), ev("restart")), false);
  assert.equal(accepts(t({ kinds: ["restart"] }), ev("restart")), true);
  assert.equal(accepts(t({ level: "error" }), ev("restart", "warn")), false);
  assert.equal(accepts(t({ level: "warn" }), ev("restart", "error")), true);
});

Deno.test("Notifier retries with backoff, then reports and tells the other sinks", async () => {
  const seen: { sink: string; kind: string }[] = [];
  const failures: string[] = [];
  const n = new Notifier([
    { sink: sink({ webhook: "http://127.0.0.1:1/bad" }), key: null },
    { sink: sink({ webhook: "http://127.0.0.1:1/good" }), key: null },
  ], {
    attempts: 3,
    backoffMs: 5,
    onFailure: (s, e, why) => failures.push(`${s} ${e.kind} ${why}`),
    deliver: (t, e) => {
      seen.push({ sink: t.sink.webhook!, kind: e.kind });
      return t.sink.webhook!.endsWith("bad")
        ? Promise.reject(new Error("HTTP 500"))
        : Promise.resolve();
    },
  });
  n.push(ev("restart"));
  await poll("the failure to reach the good sink", () => seen.length === 5, 10_000, 5);
  await n.close();
  assert.equal(seen.filter((s) => s.sink.endsWith("bad")).length, 3, "three attempts");
  assert.deepEqual(failures, [
    "webhook http://127.0.0.1:1/bad restart HTTP 500 (after 3 attempts)",
  ]);
  assert.deepEqual(seen.filter((s) => s.sink.endsWith("good")).map((s) => s.kind), [
    "restart",
    "notify_failed",
  ]);
});

Deno.test("Notifier queues are bounded: a stuck sink drops the oldest and says so", async () => {
  const failures: string[] = [];
  const release = Promise.withResolvers<void>();
  const n = new Notifier([{ sink: sink(), key: null }], {
    maxQueue: 2,
    onFailure: (_s, e, why) => failures.push(`${e.reason} ${why}`),
    deliver: () => release.promise,
  });
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) n.push({ ...ev(), reason: `r${i}` });
  const pushMs = performance.now() - t0;
  // r0 is in flight, r1 and r2 were dropped for r3 and r4.
  assert.deepEqual(failures, [
    "r1 queue full (2 waiting): dropped",
    "r2 queue full (2 waiting): dropped",
  ]);
  release.resolve();
  await n.close();
  console.log(`5 pushes to a stuck sink took ${pushMs.toFixed(2)} ms`);
});

Deno.test("Notifier.setSinks: a kept sink keeps its queue, a removed one gets nothing more, a new one starts", async () => {
  const seen: string[] = [];
  const release = Promise.withResolvers<void>();
  const kept = { sink: sink({ webhook: "http://127.0.0.1:1/kept" }), key: null };
  const gone = { sink: sink({ webhook: "http://127.0.0.1:1/gone" }), key: null };
  const n = new Notifier([kept, gone], {
    onFailure: () => {},
    deliver: async (t, e) => {
      if (t.sink.webhook!.endsWith("kept") && e.reason === "r0") await release.promise;
      seen.push(`${t.sink.webhook!.slice(19)} ${e.reason}`);
    },
  });
  n.push({ ...ev(), reason: "r0" });
  n.push({ ...ev(), reason: "r1" }); // waits behind r0 on the kept sink
  await poll("gone to deliver r0 and r1", () => seen.length === 2, 5_000, 5);
  // The manifest is reloaded: the same kept sink (a new object, equal settings), a new one.
  n.setSinks([
    { sink: sink({ webhook: "http://127.0.0.1:1/kept" }), key: null },
    { sink: sink({ webhook: "http://127.0.0.1:1/new" }), key: null },
  ]);
  assert.deepEqual(n.sinks, ["webhook http://127.0.0.1:1/kept", "webhook http://127.0.0.1:1/new"]);
  n.push({ ...ev(), reason: "r2" });
  release.resolve();
  await poll("kept to drain r0, r1, r2", () => seen.length === 6, 5_000, 5);
  await n.close();
  assert.deepEqual(seen.sort(), [
    "gone r0",
    "gone r1",
    "kept r0",
    "kept r1",
    "kept r2",
    "new r2",
  ]);
});

Deno.test("deliver posts a signed JSON document; an exec sink gets BATON_EVENT_* variables", async () => {
  const got = Promise.withResolvers<{ body: string; sig: string | null }>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    got.resolve({ body: await req.text(), sig: req.headers.get(SIGNATURE_HEADER) });
    return new Response("ok");
  });
  const url = `http://127.0.0.1:${server.addr.port}/hook`;
  try {
    const e = ev();
    await deliver({ sink: sink({ webhook: url }), key: "k".repeat(20) }, e);
    const { body, sig } = await got.promise;
    assert.deepEqual(JSON.parse(body), e);
    assert.equal(sig, await signBody("k".repeat(20), body));
    assert.match(sig!, /^sha256=[0-9a-f]{64}$/);
  } finally {
    await server.shutdown();
  }
  const dir = await Deno.makeTempDir();
  const out = `${dir}/env.txt`;
  const e = ev("takeover");
  await deliver({
    sink: sink({ webhook: null, exec: ["sh", "-c", `env | grep ^BATON_EVENT_ | sort > ${out}`] }),
    key: null,
  }, e);
  const lines = (await Deno.readTextFile(out)).trim().split("\n");
  assert.deepEqual(lines, Object.entries(eventEnv(e)).map(([k, v]) => `${k}=${v}`).sort());
  assert.ok(lines.includes("BATON_EVENT_KIND=takeover"));
  await assert.rejects(
    deliver({ sink: sink({ webhook: null, exec: ["false"] }), key: null }, e),
    /false exited with code 1/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deliver gives up on a receiver that never answers after the sink's timeout", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const c of listener) conns.push(c); // accept, never answer
  })().catch(() => {});
  try {
    const url = `http://127.0.0.1:${listener.addr.port}/hook`;
    await assert.rejects(
      deliver({ sink: sink({ webhook: url, timeoutMs: 300 }), key: null }, ev()),
      /no answer within 300 ms/,
    );
  } finally {
    listener.close();
    for (const c of conns) c.close();
  }
});

Deno.test("cluster.notify: sinks parse with defaults; exactly one of webhook and exec", async () => {
  const base = "nodes:\n  a: { url: http://127.0.0.1:7401 }\ncluster:\n  notify:\n";
  const ok = await parseManifest(
    base + "    - { webhook: http://127.0.0.1:9/h, kinds: [restart, takeover], level: warn }\n" +
      "    - { exec: [logger, -t, baton], timeout: 2s }\n",
    "/tmp/x.yaml",
  );
  assert.ok(ok.ok, JSON.stringify(ok));
  if (!ok.ok) return;
  assert.deepEqual(ok.manifest.cluster.notify, [
    {
      webhook: "http://127.0.0.1:9/h",
      exec: null,
      secretFile: null,
      kinds: ["restart", "takeover"],
      level: "warn",
      timeoutMs: 5000,
    },
    {
      webhook: null,
      exec: ["logger", "-t", "baton"],
      secretFile: null,
      kinds: null,
      level: "info",
      timeoutMs: 2000,
    },
  ]);
  const both = await parseManifest(
    base + "    - { webhook: http://127.0.0.1:9/h, exec: [/bin/true] }\n",
    "/tmp/x.yaml",
  );
  assert.ok(!both.ok);
  assert.match(JSON.stringify(both), /exactly one of webhook or exec in a notify sink, found both/);
  const badKind = await parseManifest(
    base + "    - { exec: [/bin/true], kinds: [restarts] }\n",
    "/tmp/x.yaml",
  );
  assert.ok(!badKind.ok);
  assert.match(JSON.stringify(badKind), /expected one of restart, escalation/);
});

Deno.test("core records manifest_mismatch once when a peer's manifest differs", () => {
  const a = boot("alpha", makeManifest({ nodes: { alpha: 2, beta: 1 }, hash: "h-one" }));
  const b = boot("beta", makeManifest({ nodes: { alpha: 2, beta: 1 }, hash: "h-two" }));
  exchange(100, a, b);
  exchange(200, a, b);
  const mismatches = records(a.log, "manifest_mismatch");
  assert.equal(mismatches.length, 1, JSON.stringify(mismatches));
  assert.match(mismatches[0]!.message, /peer beta runs manifest h-two, this node h-one/);
  assert.equal(notifyKind(rec("manifest_mismatch")), "manifest_mismatch");
  const same = boot("alpha", makeManifest({ nodes: { alpha: 2, beta: 1 }, hash: "h" }));
  const peer = boot("beta", makeManifest({ nodes: { alpha: 2, beta: 1 }, hash: "h" }));
  exchange(100, same, peer);
  assert.equal(records(same.log, "manifest_mismatch").length, 0);
});
