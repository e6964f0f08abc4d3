/**
 * Rejoin after host death, with real processes: a two-node cluster with a baton witness on
 * loopback. Five rounds, alternating hosts: the active host dies (its agent and apps are
 * SIGKILLed), the peer takes over, then the dead host's agent starts again with its old state
 * directory and a new (faked) kernel boot id, as after a reboot. Each rebooted host must come
 * back as standby, start and restart nothing, never be marked failed, and no sample of /proc
 * (taken every 5 ms from outside) may show a movable app alive twice.
 */
import assert from "node:assert/strict";
import {
  LocalCluster,
  sampleAppCommand,
  scanSampleApps,
  type Status,
} from "../scripts/local_cluster.ts";

const IT = { sanitizeOps: false, sanitizeResources: false } as const;
const MOVABLE = ["web", "api"];
const WAIT_MS = 60_000;

type Ev = Status["events"][number] & { time: string };

async function events(c: LocalCluster, node: string): Promise<Ev[]> {
  const res = await fetch(`${c.url(node)}/v1/events?n=1000`, {
    signal: AbortSignal.timeout(5000),
  });
  return (await res.json() as { events: Ev[] }).events;
}

/** Live PIDs of each movable app of test `tag`, by app: one pass over /proc. */
function scan(tag: string): Record<string, number[]> {
  const found = scanSampleApps(tag, MOVABLE);
  return Object.fromEntries(Object.entries(found).map(([app, ps]) => [app, ps.map((p) => p.pid)]));
}

Deno.test(
  "five host deaths and reboots, alternating: each host rejoins as standby, touching nothing",
  IT,
  async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const dir = await Deno.makeTempDir({ prefix: "baton-rejoin-" });
    const bootFile = (n: string) => `${dir}/boot_id-${n}`;
    const newBoot = (n: string) => Deno.writeTextFile(bootFile(n), crypto.randomUUID() + "\n");
    await newBoot("alpha");
    await newBoot("beta");
    const c = await LocalCluster.create({
      nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
      witness: true,
      interval: "200ms",
      deadAfter: "2s",
      apps: () =>
        MOVABLE.map((name) =>
          `  ${name}:\n    command: ${JSON.stringify(sampleAppCommand(0, `${name}-${tag}`))}\n` +
          `    check: { type: process }\n    stop: { timeout: 3s }`
        ).join("\n"),
      env: {
        alpha: { ...Deno.env.toObject(), BATON_BOOT_ID_FILE: bootFile("alpha") },
        beta: { ...Deno.env.toObject(), BATON_BOOT_ID_FILE: bootFile("beta") },
      },
    });
    let samples = 0;
    const doubles: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples++;
        for (const [app, pids] of Object.entries(scan(tag))) {
          if (pids.length > 1) {
            doubles.push(
              `${new Date().toISOString()} ${app}: ${pids.join(",")}`,
            );
          }
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      c.startWitness();
      await c.startAgent("alpha");
      await c.waitRole("alpha", "active", WAIT_MS);
      await c.waitRunning("alpha", MOVABLE, WAIT_MS);
      await c.startAgent("beta");
      await c.waitFor("beta standby hearing alpha", async () => {
        const s = await c.status("beta");
        return s?.role === "standby" && s.peers.some((p) => p.name === "alpha" && p.reachable);
      }, WAIT_MS);
      let [dead, peer] = ["alpha", "beta"];
      for (let round = 1; round <= 5; round++) {
        await c.killHost(dead);
        await c.waitRole(peer, "active", WAIT_MS);
        await c.waitRunning(peer, MOVABLE, WAIT_MS);
        await newBoot(dead);
        await c.startAgent(dead);
        const back = await c.waitFor(`${dead} back and settled (round ${round})`, async () => {
          const s = await c.status(dead);
          return s && s.role !== "active" &&
              s.events.some((e) => e.kind === "history" || e.kind === "lease_resumed")
            ? s
            : null;
        }, WAIT_MS);
        // Let it run a while as standby: it must go on starting nothing.
        await c.waitFor(`${peer} hears ${dead} as standby`, async () => {
          const s = await c.status(peer);
          return s?.peers.some((p) => p.name === dead && p.reachable && p.role === "standby");
        }, WAIT_MS);
        const evs = await events(c, dead);
        const since = evs.slice(evs.map((e) => e.kind).lastIndexOf("boot"));
        const kinds = since.map((e) => e.kind);
        const why = `round ${round} ${dead}: ${
          since.map((e) => `${e.kind}: ${e.message}`).join("\n")
        }`;
        assert.equal(back.role, "standby", why);
        assert.match(since[0]?.message ?? "", /host rebooted/, why);
        for (const bad of ["started", "restart", "escalation", "failed", "backoff"]) {
          assert.ok(!kinds.includes(bad), `${bad} after the reboot: ${why}`);
        }
        assert.ok(kinds.includes("history"), why);
        const s = (await c.status(dead))!;
        assert.equal(s.role, "standby", why);
        assert.ok(s.apps.every((a) => a.pid === null && a.restarts === 0), why);
        const onPeer = (await c.status(peer))!;
        assert.ok(MOVABLE.every((a) => onPeer.apps.find((x) => x.name === a)?.pid), "apps on peer");
        console.log(`round ${round}: ${dead} rebooted, rejoined standby; ${peer} active`);
        [dead, peer] = [peer, dead];
      }
      sampling = false;
      await sampler;
      console.log(`${samples} samples of /proc, ${doubles.length} with a movable app twice`);
      assert.deepEqual(doubles, []);
    } catch (err) {
      for (const n of ["alpha", "beta"]) {
        const log = await Deno.readTextFile(`${c.dir}/${n}.log`).catch(() => "");
        console.error(`--- ${n}.log (tail)\n${log.slice(-3000)}`);
      }
      throw err;
    } finally {
      sampling = false;
      await sampler;
      await c.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
