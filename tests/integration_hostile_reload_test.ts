/**
 * A running agent that is sent SIGHUP with a manifest built to break the loader (alias bombs,
 * self-including merge keys, nesting thousands deep, huge numbers, giant strings, a giant file)
 * refuses it, records why, keeps its last good manifest and its app, and stays alive: a real
 * `baton run` process on one node, its app a `sleep infinity` with a unique marker.
 */
import assert from "node:assert/strict";
import { alive, LocalCluster } from "../scripts/local_cluster.ts";
import { hostileManifests } from "./helpers/hostile_manifests.ts";

const IT = { sanitizeOps: false, sanitizeResources: false } as const;

async function eventCount(c: LocalCluster, node: string, kind: string): Promise<number | null> {
  try {
    const res = await fetch(`${c.url(node)}/v1/events?n=1000`, {
      signal: AbortSignal.timeout(5000),
    });
    const body = await res.json() as { events: { kind: string }[] };
    return body.events.filter((e) => e.kind === kind).length;
  } catch {
    return null;
  }
}

Deno.test(
  "a SIGHUP with each hostile manifest is refused; the agent keeps its manifest and app",
  IT,
  async () => {
    const c = await LocalCluster.create({
      nodes: [{ name: "solo", priority: 100 }],
      apps: () => `  idle:\n    command: ["sleep", "infinity", "${Date.now() % 1e9}"]`,
    });
    try {
      await c.startAgent("solo");
      const before = await c.waitRunning("solo", ["idle"], 30_000);
      const pid = before.apps.find((a) => a.name === "idle")!.pid!;
      const good = await Deno.readTextFile(c.manifest);
      const hash = (before as unknown as { manifestHash: string }).manifestHash;
      const agent = c.agents.get("solo")!;
      let refused = (await eventCount(c, "solo", "reload_refused")) ?? 0;
      for (const hostile of hostileManifests(good)) {
        await Deno.writeTextFile(c.manifest, hostile.text);
        Deno.kill(agent.pid, "SIGHUP");
        const want = refused + 1;
        refused = await c.waitFor(`${hostile.name}: reload refused`, async () => {
          const n = await eventCount(c, "solo", "reload_refused");
          return n !== null && n >= want ? n : null;
        }, 60_000);
        const s = await c.status("solo");
        assert.ok(s, `${hostile.name}: the agent answers after the refused reload`);
        assert.equal((s as unknown as { manifestHash: string }).manifestHash, hash, hostile.name);
        assert.equal(s.apps.find((a) => a.name === "idle")?.pid, pid, hostile.name);
        assert.ok(alive(pid), `${hostile.name}: the app still runs`);
      }
      // The good manifest is still accepted afterwards: the agent is whole.
      await Deno.writeTextFile(c.manifest, good);
      const r = await c.cli("solo", "reload");
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const log = await Deno.readTextFile(`${c.dir}/solo.log`);
      assert.doesNotMatch(log, /Uncaught|unhandled rejection|uncaught exception/, log.slice(-2000));
    } finally {
      await c.stop();
    }
  },
);
