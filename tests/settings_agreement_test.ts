/**
 * Issue 11, finding 3: one set of timings for the cluster. Heartbeats carry the sender's safety
 * settings and the deadAfter/fenceAfter in force there; a standby waits for the longest
 * deadAfter in force anywhere, an active that reloads keeps the shorter fenceAfter until every
 * peer acknowledged, and a mismatch is a loud warning naming the differing keys.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  appSpec,
  boot,
  type CoreHarness,
  makeManifest,
  runCluster,
  spawns,
} from "./helpers/core_fixtures.ts";
import {
  fenceAfterInForce,
  safetyKeys,
  settingsHash,
  settingsMismatch,
} from "../src/core/settings.ts";
import { buildStatus } from "../src/agent/status.ts";
import { WitnessArbiter } from "../src/witness/arbiter.ts";
import type { Manifest } from "../src/manifest/types.ts";

const WEB = appSpec("web");
const SLOW = { intervalMs: 200, deadAfterMs: 10_000, fenceAfterMs: 9_000 };
const FAST = { intervalMs: 200, deadAfterMs: 1_000, fenceAfterMs: 700 };

function manifest(hb: typeof SLOW): Manifest {
  return makeManifest({
    nodes: { alpha: 2, beta: 1 },
    apps: [WEB],
    witness: "http",
    heartbeat: hb,
    hash: "same",
  });
}

/** Both nodes tick every 100 ms until `to`; the network is cut, the witness answers beta only. */
function isolate(a: CoreHarness, b: CoreHarness, from: number, to: number) {
  let betaStart: number | null = null;
  let alphaStop: number | null = null;
  for (let t = from; t <= to; t += 100) {
    b.witness(t, "http");
    const bActs = b.tick(t);
    b.settle(bActs, t);
    if (betaStart === null && spawns(bActs).some((s) => s.app === "web")) betaStart = t;
    a.settle(a.tick(t), t);
    if (alphaStop === null && a.running().length === 0) alphaStop = t;
  }
  return { betaStart, alphaStop };
}

Deno.test("a standby reloaded to deadAfter 1s waits for the active's 10s: never two copies", () => {
  const a = boot("alpha", manifest(SLOW));
  const b = boot("beta", manifest(SLOW));
  runCluster([a, b], 0, 12_000, 100);
  assert.equal(a.state.role, "active");
  // Rolling reload: beta already runs the new, shorter timings; alpha still the old ones.
  b.feed({ type: "manifest", manifest: manifest(FAST) }, 12_050);
  runCluster([a, b], 12_100, 14_000, 100);
  assert.deepEqual(settingsMismatch(b.state).map((m) => m.peer), ["alpha"]);
  const { betaStart, alphaStop } = isolate(a, b, 14_100, 40_000);
  assert.ok(alphaStop !== null, "alpha fenced itself");
  assert.ok(betaStart !== null, "beta took over in the end");
  assert.ok(
    betaStart > alphaStop,
    `beta started web at ${betaStart} ms, alpha stopped it only at ${alphaStop} ms`,
  );
});

Deno.test("an active that reloads longer timings keeps its old fenceAfter until every peer acknowledged", () => {
  const a = boot("alpha", manifest(FAST));
  const b = boot("beta", manifest(FAST));
  runCluster([a, b], 0, 5_000, 100);
  assert.equal(a.state.role, "active");
  a.feed({ type: "manifest", manifest: manifest(SLOW) }, 5_050);
  assert.equal(fenceAfterInForce(a.state), FAST.fenceAfterMs, "held until beta acknowledges");
  // alpha is cut off before beta heard the new settings: it fences on the old, short timing.
  const { betaStart, alphaStop } = isolate(a, b, 5_100, 30_000);
  assert.ok(alphaStop !== null && betaStart !== null);
  assert.ok(betaStart > alphaStop, `beta at ${betaStart}, alpha stopped at ${alphaStop}`);
});

Deno.test("the held fenceAfter is released once the peer's heartbeat acknowledges the new settings", () => {
  const a = boot("alpha", manifest(FAST));
  const b = boot("beta", manifest(FAST));
  runCluster([a, b], 0, 5_000, 100);
  a.feed({ type: "manifest", manifest: manifest(SLOW) }, 5_050);
  b.hear(a, 5_100); // beta learns alpha's new settings
  a.hear(b, 5_200); // beta's reply says it has seen them
  assert.equal(a.state.heldTimings, null);
  assert.equal(fenceAfterInForce(a.state), SLOW.fenceAfterMs);
});

Deno.test("status: a settings mismatch is a loud warning naming the differing keys", () => {
  const a = boot("alpha", manifest(SLOW));
  const b = boot("beta", manifest(FAST));
  runCluster([a, b], 0, 3_000, 100);
  const doc = buildStatus(b.state, 3_000, []);
  const line = doc.warnings.find((w) => w.startsWith("CLUSTER SETTINGS DIFFER from alpha"));
  assert.ok(line, `warnings: ${doc.warnings.join(" | ")}`);
  assert.match(line, /heartbeat\.deadAfter \(1000 here, 10000 there\)/);
  assert.match(line, /heartbeat\.fenceAfter/);
  assert.doesNotMatch(line, /witness|nodes|apps\.movable/);
});

Deno.test("WitnessArbiter: a node beating with a longer deadAfter keeps its lease that long", () => {
  const w = new WitnessArbiter(1_000, 0);
  w.beat("alpha", "active", 1, 2_000, 10_000);
  assert.equal(w.claim("beta", 2, 4_000).granted, false, "alpha's 10 s lease still holds");
  assert.equal(w.claim("beta", 2, 12_500).granted, true);
});

Deno.test("agreement covers safety keys only: TLS paths, secret file, notification sinks and a floating IP's interface may differ per host", () => {
  const base = manifest(FAST);
  const vip = (iface: string) => ({
    address: "10.9.0.100",
    prefix: 24,
    family: 4 as const,
    cidr: "10.9.0.100/24",
    interface: iface,
  });
  const alpha: Manifest = { ...base, cluster: { ...base.cluster, vip: [vip("eth0")] } };
  const beta: Manifest = {
    ...base,
    cluster: {
      ...base.cluster,
      secretFile: "/etc/baton/other-secret",
      vip: [vip("ens3")],
      tls: { cert: "/b/cert.pem", key: "/b/key.pem", ca: "/b/ca.pem" },
      notify: [{
        webhook: null,
        exec: ["/bin/true"],
        secretFile: null,
        kinds: null,
        level: "info",
        timeoutMs: 1000,
      }],
    },
  };
  assert.equal(settingsHash(safetyKeys(alpha)), settingsHash(safetyKeys(beta)));
  // A different address is a safety difference (two hosts would hold different VIPs).
  const moved: Manifest = {
    ...base,
    cluster: {
      ...base.cluster,
      vip: [{ ...vip("eth0"), address: "10.9.0.101", cidr: "10.9.0.101/24" }],
    },
  };
  assert.notEqual(settingsHash(safetyKeys(alpha)), settingsHash(safetyKeys(moved)));
  // And a different deadAfter is one too.
  assert.notEqual(settingsHash(safetyKeys(base)), settingsHash(safetyKeys(manifest(SLOW))));
});
