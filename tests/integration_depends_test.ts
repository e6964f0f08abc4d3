/**
 * Start order and readiness with real agents on loopback (`dependsOn`, `readyTimeout`): three
 * movable apps a ← b ← c (c depends on b, b on a), each a bash script that appends
 * `start NODE <date +%s.%N>` to its own file when it starts and `stop NODE <time>` when it
 * gets SIGTERM. Each is ready once its exec check sees its pid file (written after its start
 * line); c's check also needs `c-ok`, so the test can keep c from ever being ready.
 *
 * Shown by the apps' own timestamps: start order on the first start and on a switchover to the
 * peer, reverse order of the stops on the old host, every stop there before any start on the
 * target; and a switchover whose target never gets c ready fails, naming c.
 */
import assert from "node:assert/strict";
import { LocalCluster } from "../scripts/local_cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const WAIT_MS = 30_000;
const APPS = ["a", "b", "c"];

/** One app: bash that logs its start and its SIGTERM with timestamps. */
function appYaml(dir: string, name: string, deps: string[], extraCheck = ""): string {
  const log = `${dir}/${name}.times`;
  const pidFile = `${dir}/${name}.pid`;
  const script = [
    `echo "start $BATON_NODE $(date +%s.%N)" >> ${log}`,
    `trap 'echo "stop $BATON_NODE $(date +%s.%N)" >> ${log}; rm -f ${pidFile}; exit 0' TERM`,
    `echo $$ > ${pidFile}`,
    "while :; do sleep 0.05 & wait $!; done",
  ].join("\n");
  const check = `test -s ${pidFile} && kill -0 "$(cat ${pidFile})"${extraCheck}`;
  return [
    `  ${name}:`,
    `    command: ${JSON.stringify(["bash", "-c", script])}`,
    ...(deps.length > 0 ? [`    dependsOn: [${deps.join(", ")}]`] : []),
    `    readyTimeout: 4s`,
    `    check: { type: exec, command: ${
      JSON.stringify(["sh", "-c", check])
    }, interval: 200ms, timeout: 2s, failures: 200 }`,
    `    stop: { timeout: 5s }`,
  ].join("\n");
}

interface Stamp {
  app: string;
  kind: "start" | "stop";
  node: string;
  t: number;
}

/** Every timestamp line the apps wrote, oldest first. */
async function stamps(dir: string): Promise<Stamp[]> {
  const all: Stamp[] = [];
  for (const app of APPS) {
    const text = await Deno.readTextFile(`${dir}/${app}.times`).catch(() => "");
    for (const line of text.split("\n")) {
      const [kind, node, t] = line.trim().split(" ");
      if ((kind === "start" || kind === "stop") && node && t) {
        all.push({ app, kind, node, t: Number(t) });
      }
    }
  }
  return all.sort((x, y) => x.t - y.t);
}

/** The apps of `kind` on `node` after time `since`, in timestamp order. */
function order(all: Stamp[], kind: Stamp["kind"], node: string, since = 0): string[] {
  return all.filter((s) => s.kind === kind && s.node === node && s.t > since).map((s) => s.app);
}

Deno.test(
  "dependsOn with real agents: start in order, switchover stops in reverse and starts in order on the peer, a target app never ready fails the switchover",
  opts,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "baton-deps-" });
    await Deno.writeTextFile(`${dir}/c-ok`, "");
    const c = await LocalCluster.create({
      nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
      apps: () =>
        [
          // Listed out of order on purpose: the order comes from dependsOn.
          appYaml(dir, "c", ["b"], ` && test -e ${dir}/c-ok`),
          appYaml(dir, "b", ["a"]),
          appYaml(dir, "a", []),
        ].join("\n"),
      interval: "100ms",
      deadAfter: "1s",
    });
    let failed = false;
    try {
      await c.startAgent("alpha");
      await c.waitRunning("alpha", APPS, WAIT_MS);
      await c.startAgent("beta");
      await c.waitFor("beta standby, alpha seen active", async () => {
        const s = await c.status("beta");
        return s?.role === "standby" &&
          s.peers.some((p) => p.name === "alpha" && p.reachable && p.role === "active");
      }, WAIT_MS);
      await c.waitFor("alpha to see beta standby", async () => {
        const s = await c.status("alpha");
        return s?.peers.some((p) => p.name === "beta" && p.reachable && p.role === "standby");
      }, WAIT_MS);
      const first = await stamps(dir);
      assert.deepEqual(order(first, "start", "alpha"), ["a", "b", "c"], JSON.stringify(first));

      // 1. A switchover to beta: stops c, b, a on alpha; starts a, b, c on beta; success only
      //    once all three are ready there.
      const t0 = Date.now() / 1000;
      const r = await c.cli("alpha", "switchover", "--to", "beta");
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /switched over to beta/);
      // Read at once: success was reported only once c was ready (its start line is written).
      const moved = await stamps(dir);
      const s = await c.waitRunning("beta", APPS, WAIT_MS);
      assert.equal(s.role, "active");
      assert.deepEqual(order(moved, "stop", "alpha", t0), ["c", "b", "a"], JSON.stringify(moved));
      assert.deepEqual(order(moved, "start", "beta", t0), ["a", "b", "c"], JSON.stringify(moved));
      const lastStop = Math.max(
        ...moved.filter((x) => x.kind === "stop" && x.node === "alpha").map((x) => x.t),
      );
      const firstStart = Math.min(
        ...moved.filter((x) => x.kind === "start" && x.node === "beta").map((x) => x.t),
      );
      assert.ok(lastStop < firstStart, "every stop on alpha before any start on beta");
      const at = (app: string, kind: Stamp["kind"], node: string) =>
        moved.find((x) => x.app === app && x.kind === kind && x.node === node && x.t > t0)!.t;
      console.log(
        `switchover: alpha stopped c→b→a in ${
          ((at("a", "stop", "alpha") - at("c", "stop", "alpha")) * 1000).toFixed(0)
        } ms; beta started a→b→c in ${
          ((at("c", "start", "beta") - at("a", "start", "beta")) * 1000).toFixed(0)
        } ms; CLI answered after ${(Date.now() / 1000 - t0).toFixed(2)} s`,
      );

      // 2. c can no longer be ready: a switchover back to alpha fails and names c.
      await Deno.remove(`${dir}/c-ok`);
      await c.waitFor("beta to see alpha standby", async () => {
        const st = await c.status("beta");
        return st?.peers.some((p) => p.name === "alpha" && p.reachable && p.role === "standby");
      }, WAIT_MS);
      const t1 = Date.now() / 1000;
      const back = await c.cli("beta", "switchover", "--to", "alpha");
      assert.notEqual(back.code, 0, `expected a failed switchover: ${back.stdout}${back.stderr}`);
      assert.match(back.stderr + back.stdout, /app c was not ready within its readyTimeout \(4s\)/);
      const after = await stamps(dir);
      assert.deepEqual(order(after, "stop", "beta", t1), ["c", "b", "a"], JSON.stringify(after));
      assert.deepEqual(order(after, "start", "alpha", t1), ["a", "b", "c"], JSON.stringify(after));
      console.log(
        `failed switchover answered after ${(Date.now() / 1000 - t1).toFixed(2)} s: ` +
          (back.stderr + back.stdout).trim(),
      );
    } catch (err) {
      failed = true;
      for (const node of ["alpha", "beta"]) {
        const log = await Deno.readTextFile(`${c.dir}/${node}.log`).catch(() => "(no log)");
        console.error(`---- ${node}.log (last 60 lines)`);
        console.error(log.split("\n").slice(-60).join("\n"));
      }
      throw err;
    } finally {
      await c.stop({ keepDir: failed });
      if (!failed) await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
