/**
 * `limits:` (src/supervisor/limits.ts) with real processes: the mechanism chosen per limit
 * (cgroup v2, v1, prlimit, not applied), the limits as the kernel sees them, and an app killed
 * by its memory limit reported with that reason, by the runner and by a real agent that
 * restarts it.
 */
import assert from "node:assert/strict";
import { LocalCluster } from "../scripts/local_cluster.ts";
import { describeLimits, formatSize, limitsPrefix, planLimits } from "../src/supervisor/limits.ts";
import { removeClusterLimits } from "../src/supervisor/limits_adopt.ts";
import type { ExitInfo } from "../src/supervisor/process_runner.ts";
import { RealProcessRunner } from "../src/supervisor/real_runner.ts";

const IT = { sanitizeOps: false, sanitizeResources: false } as const;
const MiB = 2 ** 20;
globalThis.addEventListener("unload", () => removeClusterLimits(CLUSTER));
const CLUSTER = `limits-${crypto.randomUUID().slice(0, 8)}`;
/** Allocates (and touches) 10 MiB every 20 ms up to 300 MiB, then sleeps. */
const HOG = [
  "python3",
  "-c",
  "import time\nb = []\nfor _ in range(30):\n    b.append(b'\\x01' * (10 * 2**20))\n" +
  "    time.sleep(0.02)\ntime.sleep(300)\n",
];

function v1Available(ctrl: string): boolean {
  try {
    return Deno.readTextFileSync("/proc/self/cgroup").split("\n").some((l) =>
      l.split(":")[1]?.split(",").includes(ctrl)
    ) && Deno.statSync(`/sys/fs/cgroup/${ctrl}`).isDirectory;
  } catch {
    return false;
  }
}
const MEMORY_CGROUP = v1Available("memory") || _v2Memory();
function _v2Memory(): boolean {
  try {
    return Deno.readTextFileSync("/sys/fs/cgroup/cgroup.controllers").includes("memory");
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function env(app: string) {
  return { BATON_CLUSTER: CLUSTER, BATON_NODE: "solo", BATON_APP: app };
}

Deno.test("planLimits without cgroups falls back to prlimit, and says what is not applied", () => {
  const place = { app: "w", cluster: "c", node: "n", v2Dir: null, v1: {} };
  const plan = planLimits(
    { memoryBytes: 64 * MiB, cpuWeight: 50, tasks: 32, openFiles: 100 },
    { ...place, prlimitPath: "/usr/bin/prlimit" },
  );
  assert.deepEqual(plan.how, {
    memoryBytes: "prlimit",
    cpuWeight: "not applied",
    tasks: "prlimit",
    openFiles: "prlimit",
  });
  assert.deepEqual(plan.prlimit, [`--as=${64 * MiB}`, "--nproc=32:32", "--nofile=100:100"]);
  assert.equal(
    describeLimits(plan),
    "memory 64M: prlimit; cpu 50: not applied; tasks 32: prlimit; openFiles 100: prlimit",
  );
  const none = planLimits({ openFiles: 100 }, { ...place, prlimitPath: null });
  assert.deepEqual(none.how, { openFiles: "not applied" });
  assert.deepEqual(limitsPrefix({ v1Dirs: [], prlimit: [] }), []);
  assert.equal(formatSize(64 * MiB), "64M");
  assert.equal(formatSize(1536 * 1024), "1536K");
  assert.equal(formatSize(100), "100");
});

Deno.test({
  name: "RealProcessRunner applies limits: the kernel sees them (cgroup files, /proc/<pid>/limits)",
  ...IT,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const runner = new RealProcessRunner({ names: { cluster: CLUSTER, node: "solo" } });
    const limits = { memoryBytes: 64 * MiB, cpuWeight: 200, tasks: 16, openFiles: 64 };
    const { pid } = await runner.spawn({
      app: "limited",
      command: ["sleep", "300"],
      cwd: null,
      env: env("limited"),
      logDir: dir,
      limits,
    });
    try {
      const text = runner.limitsOf(pid)!;
      console.log(`limits: ${text}`);
      assert.match(text, /openFiles 64: prlimit/);
      await waitFor("prlimit to have run", () => {
        try {
          return /Max open files\s+64\s+64/.test(Deno.readTextFileSync(`/proc/${pid}/limits`));
        } catch {
          return false;
        }
      });
      // What this machine offers decides what must have been applied (never "if it says so").
      const cgroups = Deno.readTextFileSync(`/proc/${pid}/cgroup`);
      const v1Path = (ctrl: string) =>
        new RegExp(`^\\d+:(?:[a-z_]+,)*${ctrl}(?:,[a-z_]+)*:(.*)$`, "m").exec(cgroups)![1]!;
      if (v1Available("memory")) {
        assert.match(text, /memory 64M: cgroup v1/);
        const path = v1Path("memory");
        assert.match(path, new RegExp(`/baton/${CLUSTER}/solo/limited$`));
        const limit = Deno.readTextFileSync(`/sys/fs/cgroup/memory${path}/memory.limit_in_bytes`);
        assert.equal(Number(limit), 64 * MiB);
      } else if (MEMORY_CGROUP) {
        assert.match(text, /memory 64M: cgroup v2/);
      } else {
        assert.match(text, /memory 64M: (prlimit|not applied)/);
      }
      if (v1Available("pids")) {
        assert.match(text, /tasks 16: cgroup v1/);
        assert.equal(
          Deno.readTextFileSync(`/sys/fs/cgroup/pids${v1Path("pids")}/pids.max`).trim(),
          "16",
        );
      }
      if (v1Available("cpu")) {
        assert.match(text, /cpu 200: cgroup v1/);
        assert.equal(
          Deno.readTextFileSync(`/sys/fs/cgroup/cpu${v1Path("cpu")}/cpu.shares`).trim(),
          "2048",
        );
      }
    } finally {
      await runner.stop("limited", pid, { signal: "SIGKILL", timeoutMs: 1000, mode: "kill" });
      runner.detachAll();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "RealProcessRunner reports an app killed by its memory limit with that reason",
  ignore: !MEMORY_CGROUP,
  ...IT,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const runner = new RealProcessRunner({ names: { cluster: CLUSTER, node: "solo" } });
    const exits: ExitInfo[] = [];
    runner.onExit((e) => exits.push(e));
    await runner.spawn({
      app: "hog",
      command: HOG,
      cwd: null,
      env: env("hog"),
      logDir: dir,
      limits: { memoryBytes: 64 * MiB },
    });
    try {
      await waitFor("the hog to be killed", () => exits.length > 0);
      assert.match(
        exits[0]!.detail,
        /^killed by the memory limit \(64M, cgroup v(1|2): oom_kill\)$/,
      );
    } finally {
      runner.detachAll();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "an app over limits.memory 64M is restarted by the agent, the OOM reason in status and events",
  ignore: !MEMORY_CGROUP,
  ...IT,
  fn: async () => {
    const c = await LocalCluster.create({
      nodes: [{ name: "solo", priority: 0 }],
      apps: () =>
        [
          "  hog:",
          `    command: ${JSON.stringify(HOG)}`,
          "    limits: { memory: 64M, openFiles: 256 }",
          "    restart: { limit: 5, window: 10m }",
        ].join("\n"),
    });
    try {
      await c.startAgent("solo");
      const s = await c.waitFor("the hog restarted after an OOM kill", async () => {
        const st = await c.status("solo");
        const a = st?.apps.find((x) => x.name === "hog");
        return st && a && a.restarts >= 1 ? st : null;
      }, 60_000);
      const doc = await (await fetch(`${c.url("solo")}/v1/status`)).json();
      const app = doc.apps.find((x: { name: string }) => x.name === "hog");
      assert.match(app.lastFailure, /killed by the memory limit \(64M, cgroup v(1|2): oom_kill\)/);
      assert.ok(
        s.events.some((e) => /memory limit/.test(e.message)),
        `expected the OOM reason in the events, found ${JSON.stringify(s.events)}`,
      );
      const log = await Deno.readTextFile(`${c.stateDir("solo")}/events.jsonl`);
      assert.match(log, /killed by the memory limit/);
      const text = await c.cli("solo", "status");
      assert.match(text.stdout, /limits: memory 64M: cgroup v(1|2); openFiles 256: prlimit/);
    } finally {
      await c.stop();
    }
  },
});
