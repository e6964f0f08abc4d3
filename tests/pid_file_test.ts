/**
 * pidFile: (src/supervisor/pid_file.ts, RealProcessRunner): a forking daemon is followed
 * through the PID it writes, only when that PID is trusted; the launcher's exit 0 is not a
 * failure, the followed PID's death is. Real processes (sh + sleep) stand in for a daemon here;
 * tests/integration_nginx_test.ts runs real nginx.
 */
import assert from "node:assert/strict";
import { followPidFile, pidTrust, readPidFile } from "../src/supervisor/pid_file.ts";
import { readProcStat } from "../src/supervisor/proc.ts";
import type { ExitInfo } from "../src/supervisor/process_runner.ts";
import { RealProcessRunner } from "../src/supervisor/real_runner.ts";
import { openNodeCgroups, removeClusterCgroups } from "../src/supervisor/cgroup.ts";
import { cgroupsWritable } from "./helpers/cgroups.ts";

const ENV = { BATON_CLUSTER: "pidfile-test", BATON_NODE: "solo", BATON_APP: "daemon" };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function kill(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      Deno.kill(target, "SIGKILL");
    } catch { /* gone */ }
  }
}

/** A shell "daemon": forks `sleep`, which leads a new session, writes its PID, exits `code`. */
function daemonCommand(pidFile: string, code = 0): string[] {
  return [
    "sh",
    "-c",
    `setsid sleep 300 & echo $! > "$1"; exit ${code}`,
    "fake-daemon",
    pidFile,
  ];
}

Deno.test("readPidFile takes the PID on the first line and refuses anything else", async () => {
  const dir = await Deno.makeTempDir();
  const f = `${dir}/x.pid`;
  await Deno.writeTextFile(f, "4242\n/var/lib/postgresql\n");
  assert.equal(readPidFile(f), 4242);
  await Deno.writeTextFile(f, "  77 \n");
  assert.equal(readPidFile(f), 77);
  for (const bad of ["", "abc\n", "1\n", "-5\n", "12 13\n"]) {
    await Deno.writeTextFile(f, bad);
    assert.equal(readPidFile(f), null, JSON.stringify(bad));
  }
  assert.equal(readPidFile(`${dir}/missing.pid`), null);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pidTrust refuses a PID started before the launcher, of another tree or user", () => {
  const me = readProcStat(Deno.pid)!;
  const base = { cgroupDir: null, cgroupMount: null, uid: Deno.uid()!, env: {} };
  assert.equal(pidTrust(Deno.pid, { ...base, notBefore: me.startTime }), me.startTime);
  assert.match(
    String(pidTrust(Deno.pid, { ...base, notBefore: me.startTime + 1 })),
    /started before the launcher/,
  );
  assert.match(
    String(pidTrust(Deno.pid, { ...base, notBefore: 0, env: { BATON_APP: "nope" } })),
    /not in the app's process tree/,
  );
  assert.match(
    String(pidTrust(Deno.pid, { ...base, notBefore: 0, uid: 4242 })),
    /owned by uid \d+, not the app's 4242/,
  );
  assert.match(
    String(pidTrust(Deno.pid, { ...base, notBefore: 0, cgroupDir: "/x/y", cgroupMount: "/x" })),
    /not in the app's cgroup/,
  );
  assert.match(String(pidTrust(999_999_999, { ...base, notBefore: 0 })), /not running/);
});

Deno.test("followPidFile fails at once when the launcher exits non-zero", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(
    followPidFile({
      path: `${dir}/none.pid`,
      launcherPid: 1,
      launcherExit: () => ({ code: 3, signal: null }),
      trust: { notBefore: 0, cgroupDir: null, cgroupMount: null, uid: 0, env: {} },
      timeoutMs: 60_000,
    }),
    /exited with code 3 before a daemon wrote/,
  );
  await Deno.remove(dir, { recursive: true });
});

for (const withCgroup of [false, true]) {
  const how = withCgroup ? "in its cgroup" : "by its environment";
  Deno.test({
    name: `RealProcessRunner follows a forking daemon's pid file (${how}) and reports its death`,
    // Without a writable cgroup v2 (not root) only the environment case runs.
    ignore: withCgroup && !cgroupsWritable(),
  }, async () => {
    const cgroups = withCgroup ? openNodeCgroups("pidfile-test", "solo", "auto") : null;
    assert.ok(!withCgroup || cgroups !== null, "expected the node's cgroup tree");
    const dir = await Deno.makeTempDir();
    const pidFile = `${dir}/d.pid`;
    // A stale file naming a process that started before the launcher: never followed.
    await Deno.writeTextFile(pidFile, `${Deno.pid}\n`);
    const runner = new RealProcessRunner({ cgroups, pidFileWaitMs: 10_000 });
    const exits: ExitInfo[] = [];
    runner.onExit((e) => exits.push(e));
    const spawned = await runner.spawn({
      app: "daemon",
      command: daemonCommand(pidFile),
      cwd: null,
      env: ENV,
      logDir: dir,
      pidFile,
    });
    try {
      assert.equal(spawned.pid, readPidFile(pidFile));
      assert.notEqual(spawned.pid, Deno.pid);
      assert.equal(readProcStat(spawned.pid)?.startTime, spawned.startTime);
      assert.equal(runner.containment(spawned.pid), withCgroup ? "cgroup" : "process group");
      await sleep(300); // the launcher's exit 0 is long gone: no exit reported
      assert.equal(exits.length, 0);
      kill(spawned.pid);
      await waitFor("the followed daemon's exit", () => exits.length > 0);
      assert.equal(exits[0]!.pid, spawned.pid);
      assert.equal(exits.length, 1);
    } finally {
      kill(spawned.pid);
      runner.detachAll();
      removeClusterCgroups("pidfile-test", { kill: true });
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("RealProcessRunner.spawn of a pidFile app rejects when the launcher fails, or no trusted PID appears", async () => {
  const dir = await Deno.makeTempDir();
  const runner = new RealProcessRunner({ pidFileWaitMs: 1500 });
  const spec = { app: "daemon", cwd: null, env: ENV, logDir: dir, pidFile: `${dir}/d.pid` };
  await assert.rejects(
    runner.spawn({ ...spec, command: daemonCommand(spec.pidFile, 2) }),
    /exited with code 2 before a daemon wrote/,
  );
  // Exits 0 but names a process of another tree (the test runner itself): refused, then timeout.
  await assert.rejects(
    runner.spawn({
      ...spec,
      command: ["sh", "-c", `echo ${Deno.pid} > "$1"`, "x", spec.pidFile],
    }),
    /expected a trusted pid .* within 1500 ms, found: pid \d+ started before the launcher/,
  );
  runner.detachAll();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("RealProcessRunner: a pidFile daemon that does not fork (names the launcher) is watched as the command", async () => {
  const dir = await Deno.makeTempDir();
  const pidFile = `${dir}/d.pid`;
  const runner = new RealProcessRunner();
  const exits: ExitInfo[] = [];
  runner.onExit((e) => exits.push(e));
  const spawned = await runner.spawn({
    app: "daemon",
    command: ["sh", "-c", 'echo $$ > "$1"; exec sleep 300', "x", pidFile],
    cwd: null,
    env: ENV,
    logDir: dir,
    pidFile,
  });
  assert.equal(spawned.pid, readPidFile(pidFile));
  kill(spawned.pid);
  await waitFor("exit", () => exits.length > 0);
  assert.equal(exits[0]!.detail, "killed by SIGKILL");
  runner.detachAll();
  await Deno.remove(dir, { recursive: true });
});
