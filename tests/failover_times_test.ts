/**
 * `failoverTimes` (src/manifest/failover_times.ts): the formulas of its module doc on
 * hand-built manifests, the partition gap that proves no overlap, and the text `validate`
 * prints.
 */
import assert from "node:assert/strict";
import {
  failoverTimes,
  formatFailoverTimes,
  hangDetection,
  TICK_MS,
} from "../src/manifest/failover_times.ts";
import { parseManifest } from "../src/manifest/load.ts";
import { EXAMPLE_MANIFEST } from "../src/manifest/example.ts";
import { appSpec, httpCheck, makeManifest } from "./helpers/core_fixtures.ts";

const stopped = (name: string, stopMs: number, opts: Parameters<typeof appSpec>[1] = {}) => {
  const a = appSpec(name, opts);
  return { ...a, stop: { ...a.stop, timeoutMs: stopMs } };
};

Deno.test("hangDetection: max(I, D0) + (N−1)·max(I, T) + T; a process check sees no hang", () => {
  const base = httpCheck(3); // every 1s, timeout 500ms
  assert.equal(hangDetection(appSpec("a", { check: base })).ms, 1_000 + 2 * 1_000 + 500);
  // A timeout longer than the interval: checks follow each other, one at a time.
  const slow = { ...base, timeoutMs: 3_000 };
  assert.equal(hangDetection(appSpec("a", { check: slow })).ms, 1_000 + 2 * 3_000 + 3_000);
  // A long initial delay: a hang right after a restart is seen only after it.
  const late = { ...base, initialDelayMs: 5_000 };
  assert.equal(hangDetection(appSpec("a", { check: late })).ms, 5_000 + 2 * 1_000 + 500);
  assert.equal(hangDetection(appSpec("a", { check: httpCheck(1) })).ms, 1_500);
  assert.equal(hangDetection(appSpec("a")).ms, null);
});

Deno.test("failoverTimes per app: crash 0, hang H + S, second failure adds the slowest movable stop and the fence", () => {
  const m = makeManifest({
    nodes: { alpha: 2, beta: 1 },
    witness: true,
    apps: [
      stopped("web", 10_000, { check: httpCheck(3) }),
      stopped("db", 30_000),
      stopped("logs", 2_000, { movable: false, check: httpCheck(2) }),
    ],
  });
  const t = failoverTimes(m);
  const web = t.apps.find((a) => a.app === "web")!;
  assert.equal(web.crash.ms, 0);
  assert.equal(web.hang.ms, 3_500 + 10_000);
  assert.equal(web.secondCrash!.ms, 30_000, "db, the slowest movable app, is stopped first");
  assert.equal(web.secondHang!.ms, 3_500 + 30_000);
  const logs = t.apps.find((a) => a.app === "logs")!;
  assert.equal(logs.hang.ms, 2_500 + 2_000);
  assert.equal(logs.secondCrash!.ms, 1_000, "not movable: backoff here");
  assert.equal(logs.secondHang!.ms, 2_500 + 2_000 + 1_000);
  const fenced = failoverTimes({ ...m, cluster: { ...m.cluster, fence: ["true"] } });
  assert.equal(fenced.apps[0]!.secondCrash!.ms, 30_000 + 60_000, "the fence bound is added");
});

Deno.test("failoverTimes for the cluster: host death d + i; partition gap d − f − tick > 0 with a witness", () => {
  const hb = { intervalMs: 200, deadAfterMs: 1_000, fenceAfterMs: 700 };
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, witness: true, heartbeat: hb });
  const c = failoverTimes(m).cluster;
  assert.equal(c.hostDeath!.ms, 1_200);
  assert.equal(c.partition!.activeStoppedMs, 700 + TICK_MS);
  assert.equal(c.partition!.standbyStartsMs, 1_000);
  assert.equal(c.partition!.gapMs, 1_000 - 700 - TICK_MS);
  // Every manifest validate accepts keeps a positive gap: f + i + 100ms ≤ d, and i ≥ 1ms.
  assert.ok(c.partition!.gapMs! >= hb.intervalMs + 100 - TICK_MS);

  const noWitness = failoverTimes(makeManifest({ nodes: { alpha: 2, beta: 1 }, heartbeat: hb }));
  assert.equal(noWitness.cluster.hostDeath!.ms, 1_000);
  assert.equal(noWitness.cluster.partition!.gapMs, null, "nothing fences without a witness");
  assert.match(formatFailoverTimes(noWitness).join("\n"), /NO FENCING/);

  const single = failoverTimes(makeManifest({ apps: [appSpec("web")] }));
  assert.equal(single.cluster.hostDeath, null);
  assert.equal(single.apps[0]!.secondCrash, null);
  assert.match(formatFailoverTimes(single).join("\n"), /one node, nothing to fail over to/);
});

Deno.test("formatFailoverTimes on the example manifest: every failure kind with its formula", async () => {
  const r = await parseManifest(EXAMPLE_MANIFEST, "baton.yaml");
  assert.ok(r.ok);
  const text = formatFailoverTimes(failoverTimes(r.manifest)).join("\n");
  assert.match(text, /crash → restarted here\s+0s/);
  assert.match(text, /hang → replaced here\s+≤ 15s {2}\(2s \+ 2×1s \+ 1s \+ stop 10s\)/);
  assert.match(text, /2nd failure, hang → on the standby\s+≤ 15s/);
  assert.match(text, /host death → on the standby\s+≤ 1\.2s/);
  assert.match(text, /isolated active stopped by\s+750ms/);
  assert.match(text, /gap\s+250ms {2}\(no overlap\)/);
});

Deno.test("failoverTimes: survivor fencing adds fenceTimeout to host death (and fenceDelay without a baton witness)", () => {
  const hb = { intervalMs: 200, deadAfterMs: 1_000, fenceAfterMs: 700 };
  const fencing = { mode: "required" as const, timeoutMs: 30_000, delayMs: 5_000, retryMs: 5_000 };
  const nodeFence = { alpha: ["f", "{node}"], beta: ["f", "{node}"] };
  const opts = { nodes: { alpha: 2, beta: 1 }, heartbeat: hb, nodeFence, fencing };
  const baton = failoverTimes(makeManifest({ ...opts, witness: "baton" })).cluster.hostDeath!;
  assert.equal(baton.ms, 1_200 + 30_000);
  assert.match(baton.how, /fenceTimeout 30s; fencing required/);
  const none = failoverTimes(makeManifest(opts)).cluster.hostDeath!;
  assert.equal(none.ms, 1_000 + 30_000 + 5_000);
  const off = failoverTimes(makeManifest({ ...opts, fencing: { ...fencing, mode: "off" } }));
  assert.equal(off.cluster.hostDeath!.ms, 1_000);
});

Deno.test("failoverTimes with etcd: host death waits for the lease ttl; the isolated holder stops at the lease window", () => {
  const m = makeManifest({
    nodes: { alpha: 2, beta: 1 },
    apps: [appSpec("web")],
    heartbeat: { intervalMs: 200, deadAfterMs: 1_000, fenceAfterMs: 700 },
  });
  m.cluster.coordinator = {
    etcd: { endpoints: ["http://127.0.0.1:2379"], prefix: "/baton", ttlSeconds: 5, tls: null },
  };
  const t = failoverTimes(m);
  assert.equal(t.cluster.hostDeath?.ms, 5_200);
  assert.equal(t.cluster.partition?.activeStoppedMs, 4_500 + 50);
  assert.equal(t.cluster.partition?.standbyStartsMs, 5_000);
  assert.ok((t.cluster.partition?.gapMs ?? 0) > 0, "the holder stops before the key is gone");
});
