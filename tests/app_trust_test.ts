/**
 * What an app may see and what the agent may believe about processes (issue 11, findings 4
 * and 5), with real agents (`baton run`), real apps (shell scripts) and a real impostor.
 *
 * - An app gets a clean environment and, with `user:`, runs without the agent's privileges:
 *   the app itself scans every `/proc/<pid>/environ` it can read, the secret file, the
 *   credential and the state directory, and the test searches what it read for the secret.
 * - Adoption needs a proof: a process that carries the public `BATON_APP/NODE/CLUSTER` of a
 *   real app, run as `nobody` or as root without the spawn token, is neither adopted nor
 *   killed, whether the state file names the real app or not.
 *
 * Everything here needs root (to run an app and an impostor as `nobody`): skipped otherwise.
 *
 * @module
 */
import assert from "node:assert/strict";
import { alive, killGroup, LocalCluster } from "../scripts/local_cluster.ts";

const NODE = "solo";
const ROOT = Deno.uid() === 0;
const IT = { sanitizeOps: false, sanitizeResources: false, ignore: !ROOT } as const;
const NOBODY = 65534;

/** `sleep infinity <n>`: GNU sleep sums its arguments, so `<n>` is a unique marker. */
function sleeperArg(): string {
  return `0.00${String(crypto.getRandomValues(new Uint32Array(1))[0]).padStart(10, "0")}`;
}

/**
 * A shell app that reports who it is, dumps its own environment, every `/proc/<pid>/environ`
 * it can read and the files named in $TRY_FILES, lists $TRY_DIR, then sleeps. Its output is
 * its log: everything it could read, for the test to search.
 */
function scannerApp(marker: string): string[] {
  const script = [
    'echo "UID=$(id -u) GID=$(id -g) GROUPS=$(id -G)"',
    "echo ENV-BEGIN; env; echo ENV-END",
    "n=0",
    "for f in /proc/[0-9]*/environ; do",
    '  if cat "$f" 2>/dev/null; then n=$((n+1)); fi',
    "done",
    'echo; echo "ENVIRON-READ=$n"',
    'for f in $TRY_FILES; do if cat "$f" 2>/dev/null; then echo "FILE-READ $f"; ' +
    'else echo "FILE-DENIED $f"; fi; done',
    'if ls "$TRY_DIR" >/dev/null 2>&1; then echo STATE-LISTED; else echo STATE-DENIED; fi',
    "echo SCAN-DONE",
    `exec sleep infinity ${marker}`,
  ].join("\n");
  return ["sh", "-c", script];
}

async function logOf(c: LocalCluster, app: string): Promise<string> {
  try {
    return await Deno.readTextFile(`${c.stateDir(NODE)}/logs/${app}.log`);
  } catch {
    return "";
  }
}

function environOf(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0")) {
    const i = kv.indexOf("=");
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

async function withCluster(c: LocalCluster, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const log = await Deno.readTextFile(`${c.dir}/${NODE}.log`).catch(() => "");
    console.error(`---- ${NODE}.log ----\n${log.slice(-6000)}\n----`);
    throw err;
  } finally {
    await c.stop();
  }
}

Deno.test(
  "finding 4: an app run as the agent's user gets a clean environment, and no /proc/*/environ " +
    "it can read holds the secret (the secret comes as a systemd credential)",
  IT,
  async () => {
    const marker = sleeperArg();
    const dir = await Deno.makeTempDir({ prefix: "baton-trust-" });
    const secret = `credential-secret-${crypto.randomUUID()}`;
    const creds = `${dir}/credentials`;
    await Deno.mkdir(creds, { mode: 0o700 });
    await Deno.writeTextFile(`${creds}/baton.secret`, secret + "\n", { mode: 0o400 });
    const c = await LocalCluster.create({
      nodes: [{ name: NODE, priority: 100 }],
      dir,
      // The agent's environment: the credential, a canary it must not pass on, one it must.
      env: {
        [NODE]: {
          CREDENTIALS_DIRECTORY: creds,
          TRUST_CANARY: "canary-not-for-apps",
          TRUST_INHERITED: "inherited-on-request",
        },
      },
      apps: () =>
        [
          "  scan:",
          `    command: ${JSON.stringify(scannerApp(marker))}`,
          "    inheritEnv: [TRUST_INHERITED]",
          "    env: { TRY_FILES: '', TRY_DIR: /nonexistent }",
        ].join("\n"),
    });
    await withCluster(c, async () => {
      await c.startAgent(NODE);
      const s = await c.waitRunning(NODE, ["scan"], 30_000);
      const pid = s.apps.find((a) => a.name === "scan")!.pid!;
      const log = await c.waitFor("the scan to finish", async () => {
        const text = await logOf(c, "scan");
        return text.includes("SCAN-DONE") ? text : null;
      }, 30_000);
      const read = Number(/ENVIRON-READ=(\d+)/.exec(log)?.[1] ?? "0");
      assert.ok(read >= 1, `expected the app to read at least its own environ, found ${read}`);
      assert.ok(!log.includes(secret), "the app found the secret in an environ it can read");
      const appEnv = environOf(pid);
      assert.equal(appEnv["TRUST_CANARY"], undefined, "the agent's environment leaked");
      assert.equal(appEnv["CREDENTIALS_DIRECTORY"], undefined);
      assert.equal(appEnv["TRUST_INHERITED"], "inherited-on-request", "inheritEnv passes it");
      assert.equal(appEnv["HOME"], "/root");
      assert.equal(appEnv["USER"], "root");
      assert.equal(appEnv["BATON_APP"], "scan");
      assert.match(appEnv["BATON_SPAWN_TOKEN"] ?? "", /^[0-9a-f]{32}$/);
      const agentPid = c.agents.get(NODE)!.pid;
      const agentEnviron = Deno.readTextFileSync(`/proc/${agentPid}/environ`);
      assert.ok(agentEnviron.includes("CREDENTIALS_DIRECTORY="), "the agent got the credential");
      assert.ok(!agentEnviron.includes(secret), "the agent's own environ holds the secret");
      const status = (await c.status(NODE))!;
      assert.ok(!status.warnings.some((w) => w.includes("BATON_SECRET")), "no env warning");
    });
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  },
);

Deno.test(
  "finding 4: an app with user: nobody runs as uid 65534 without supplementary groups and " +
    "reads neither the state directory, the secret file nor an environ holding the secret",
  IT,
  async () => {
    const marker = sleeperArg();
    const dir = await Deno.makeTempDir({ prefix: "baton-trust-" });
    // Only the state directory's own mode (0700) and the secret file's (0600) keep it out.
    await Deno.chmod(dir, 0o755);
    const state = `${dir}/state-${NODE}`;
    // The development path: the secret in the agent's environment (and so in its environ).
    const envSecret = `env-secret-${crypto.randomUUID()}`;
    const c = await LocalCluster.create({
      nodes: [{ name: NODE, priority: 100 }],
      dir,
      env: { [NODE]: { BATON_SECRET: envSecret } },
      apps: () =>
        [
          "  scan:",
          `    command: ${JSON.stringify(scannerApp(marker))}`,
          "    user: nobody",
          "    cwd: /",
          `    env: { TRY_FILES: "${dir}/baton.secret ${state}/state.json", TRY_DIR: "${state}" }`,
        ].join("\n"),
    });
    await withCluster(c, async () => {
      await c.startAgent(NODE);
      const s = await c.waitRunning(NODE, ["scan"], 30_000);
      const pid = s.apps.find((a) => a.name === "scan")!.pid!;
      const log = await c.waitFor("the scan to finish", async () => {
        const text = await logOf(c, "scan");
        return text.includes("SCAN-DONE") ? text : null;
      }, 30_000);
      assert.match(log, new RegExp(`UID=${NOBODY} GID=${NOBODY} GROUPS=${NOBODY}\n`));
      const agentPid = c.agents.get(NODE)!.pid;
      assert.ok(
        Deno.readTextFileSync(`/proc/${agentPid}/environ`).includes(envSecret),
        "this test's agent holds the secret in its environ (BATON_SECRET)",
      );
      assert.ok(!log.includes(envSecret), "the app found the secret of BATON_SECRET");
      assert.ok(!log.includes(c.secret), "the app found the secret of the secret file");
      assert.match(log, /STATE-DENIED/, "the app could list the state directory");
      assert.doesNotMatch(log, /FILE-READ/);
      assert.equal((log.match(/FILE-DENIED/g) ?? []).length, 2);
      const appEnv = environOf(pid);
      assert.equal(appEnv["HOME"], "/nonexistent");
      assert.equal(appEnv["USER"], "nobody");
      assert.equal(appEnv["BATON_SECRET"], undefined);
      const status = (await c.status(NODE))!;
      assert.ok(
        status.warnings.some((w) => /BATON_SECRET: every process of the agent's user/.test(w)),
        `expected the BATON_SECRET warning in status, found ${JSON.stringify(status.warnings)}`,
      );
    });
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  },
);

/**
 * An impostor of app `app`: a process-group leader (setsid) carrying the app's public
 * BATON_* variables (and a made-up spawn token), run as `uid`.
 */
function startImpostor(c: LocalCluster, app: string, uid: number, marker: string) {
  const drop = uid === 0
    ? []
    : ["/usr/bin/setpriv", "--reuid", String(uid), "--regid", String(uid), "--clear-groups", "--"];
  const [program, ...args] = [...drop, "/usr/bin/setsid", "sleep", "infinity", marker];
  const child = new Deno.Command(program!, {
    args,
    cwd: "/",
    env: {
      BATON_APP: app,
      BATON_NODE: NODE,
      BATON_CLUSTER: `local-${c.id}`,
      BATON_EPOCH: "1",
      BATON_SPAWN_TOKEN: "0123456789abcdef0123456789abcdef",
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return child;
}

/** Waits until `pid` leads its own process group (setsid ran), as every baton app does. */
async function untilLeader(c: LocalCluster, pid: number): Promise<void> {
  await c.waitFor(`pid ${pid} to lead its process group`, () => {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return Promise.resolve(Number(fields[2]) === pid);
    } catch {
      return Promise.resolve(false);
    }
  }, 10_000);
}

async function eventsOf(c: LocalCluster) {
  return (await c.status(NODE))?.events ?? [];
}

Deno.test(
  "finding 5: impostors carrying a real app's BATON_* variables (as nobody, and as root " +
    "without its spawn token) are neither adopted nor killed when the state names the app",
  IT,
  async () => {
    const marker = sleeperArg();
    const c = await LocalCluster.create({
      nodes: [{ name: NODE, priority: 100 }],
      apps: () => `  sl:\n    command: ["sleep", "infinity", "${marker}"]`,
    });
    const impostors: Deno.ChildProcess[] = [];
    await withCluster(c, async () => {
      try {
        await c.startAgent(NODE);
        const first = await c.waitRunning(NODE, ["sl"], 30_000);
        const pid = first.apps.find((a) => a.name === "sl")!.pid!;
        await c.waitFor("sl recorded", async () => (await c.recordedPids(NODE)).includes(pid));
        await c.killAgent(NODE, "SIGKILL");
        for (const uid of [NOBODY, 0]) {
          const child = startImpostor(c, "sl", uid, sleeperArg());
          impostors.push(child);
          await untilLeader(c, child.pid);
        }
        await c.startAgent(NODE);
        const after = await c.waitRunning(NODE, ["sl"], 30_000);
        assert.equal(after.apps.find((a) => a.name === "sl")!.pid, pid, "the real app adopted");
        // The boot (adoption, orphans) is over once the agent answers; look a moment longer.
        await new Promise((r) => setTimeout(r, 1000));
        for (const child of impostors) {
          assert.ok(alive(child.pid), `impostor ${child.pid} was killed`);
        }
        const events = await eventsOf(c);
        const touched = events.filter((e) =>
          e.kind === "orphan_killed" || e.kind === "orphan_adopted"
        );
        assert.deepEqual(touched, [], "no process was taken for an orphan of sl");
        assert.ok(alive(pid), "the real app still runs");
      } finally {
        for (const child of impostors) {
          killGroup(child.pid);
          await child.status;
        }
      }
    });
  },
);

Deno.test(
  "finding 5: impostors carrying a real app's BATON_* variables are not adopted when the " +
    "state does not name the app: the real app is started",
  IT,
  async () => {
    const marker = sleeperArg();
    const c = await LocalCluster.create({
      nodes: [{ name: NODE, priority: 100 }],
      apps: () => `  sl:\n    command: ["sleep", "infinity", "${marker}"]`,
    });
    const impostors: Deno.ChildProcess[] = [];
    await withCluster(c, async () => {
      try {
        for (const uid of [NOBODY, 0]) {
          const child = startImpostor(c, "sl", uid, sleeperArg());
          impostors.push(child);
          await untilLeader(c, child.pid);
        }
        await c.startAgent(NODE);
        const s = await c.waitRunning(NODE, ["sl"], 30_000);
        const pid = s.apps.find((a) => a.name === "sl")!.pid!;
        const fake = impostors.map((i) => i.pid);
        assert.ok(!fake.includes(pid), `an impostor (pid ${pid}) was adopted as sl`);
        const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
        assert.ok(argv.includes(marker), "sl is the real app, started by the agent");
        await new Promise((r) => setTimeout(r, 1000));
        for (const child of impostors) {
          assert.ok(alive(child.pid), `impostor ${child.pid} was killed`);
        }
        const events = await eventsOf(c);
        assert.ok(!events.some((e) => e.kind === "orphan_adopted"), "nothing adopted");
      } finally {
        for (const child of impostors) {
          killGroup(child.pid);
          await child.status;
        }
      }
    });
  },
);

Deno.test(
  "finding 4: a secret file made readable by others refuses the reload (SIGHUP), and the " +
    "agent keeps its manifest",
  IT,
  async () => {
    const marker = sleeperArg();
    const c = await LocalCluster.create({
      nodes: [{ name: NODE, priority: 100 }],
      apps: () => `  sl:\n    command: ["sleep", "infinity", "${marker}"]`,
    });
    await withCluster(c, async () => {
      await c.startAgent(NODE);
      await c.waitRunning(NODE, ["sl"], 30_000);
      await Deno.chmod(`${c.dir}/baton.secret`, 0o644);
      Deno.kill(c.agents.get(NODE)!.pid, "SIGHUP");
      const log = await c.waitFor("the reload to be refused", async () => {
        const text = await Deno.readTextFile(`${c.dir}/${NODE}.log`);
        return text.includes("reload refused") ? text : null;
      }, 30_000);
      assert.match(
        log,
        /reload refused:\n.*secret file .*baton\.secret is readable by group or others \(mode 644\)/,
      );
      assert.ok(!log.includes(c.secret), "the log must not show the secret");
      const events = await eventsOf(c);
      assert.ok(events.some((e) => e.kind === "reload_refused"), JSON.stringify(events));
      assert.equal((await c.status(NODE))!.apps.find((a) => a.name === "sl")?.state, "running");
    });
  },
);
