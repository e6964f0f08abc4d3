import assert from "node:assert/strict";
import type {
  ExitInfo,
  ProcessRunner,
  Spawned,
  SpawnSpec,
} from "../src/supervisor/process_runner.ts";
import { exitDetail } from "../src/supervisor/process_runner.ts";
import { ADOPTED_EXIT_DETAIL, RealProcessRunner } from "../src/supervisor/real_runner.ts";
import { FakeProcessRunner } from "../src/supervisor/fake_runner.ts";
import {
  isSameProcess,
  processGroupAlive,
  processGroupMembers,
  readProcStat,
} from "../src/supervisor/proc.ts";

// ---------- helpers ----------

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(10);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function killGroup(pgid: number): void {
  try {
    Deno.kill(-pgid, "SIGKILL");
  } catch { /* already gone */ }
}

/** Collects the exits a runner reports. */
function recordExits(runner: ProcessRunner): ExitInfo[] {
  const exits: ExitInfo[] = [];
  runner.onExit((exit) => exits.push(exit));
  return exits;
}

// ---------- contract suite: real and fake runners behave alike ----------

/** What the contract suite needs from a runner under test and its world. */
interface ContractWorld {
  runner: ProcessRunner;
  /** A spec for a long-running app. */
  longRunning(app: string): SpawnSpec;
  /** A spec whose spawn must be rejected. */
  failingSpawn(app: string): SpawnSpec;
  /** Kill a process with SIGKILL from outside the runner. */
  killFromOutside(pid: number): void;
  /** A live process the runner did not spawn. */
  startExternal(): Promise<Spawned>;
  cleanup(): Promise<void>;
}

function runnerContract(name: string, makeWorld: () => Promise<ContractWorld>): void {
  const test = (title: string, body: (world: ContractWorld) => Promise<void>) =>
    Deno.test(`${name}: ${title}`, async () => {
      const world = await makeWorld();
      try {
        await body(world);
      } finally {
        await world.cleanup();
      }
    });

  test("spawn then a kill from outside reports the exit exactly once", async (w) => {
    const exits = recordExits(w.runner);
    const { pid, startTime } = await w.runner.spawn(w.longRunning("web"));
    assert.ok(pid > 0);
    assert.ok(startTime > 0);
    w.killFromOutside(pid);
    await waitFor("the exit report", () => exits.length >= 1);
    await sleep(300); // room for a duplicate report, which must not come
    assert.deepEqual(exits, [{ app: "web", pid, detail: "killed by SIGKILL" }]);
  });

  test("stop graceful ends the process and reports the exit", async (w) => {
    const exits = recordExits(w.runner);
    const { pid } = await w.runner.spawn(w.longRunning("web"));
    await w.runner.stop("web", pid, { signal: "SIGTERM", timeoutMs: 10_000, mode: "graceful" });
    await waitFor("the exit report", () => exits.length >= 1);
    assert.deepEqual(exits, [{ app: "web", pid, detail: "killed by SIGTERM" }]);
  });

  test("stop kill ends the process with SIGKILL at once", async (w) => {
    const exits = recordExits(w.runner);
    const { pid } = await w.runner.spawn(w.longRunning("web"));
    await w.runner.stop("web", pid, { signal: "SIGTERM", timeoutMs: 60_000, mode: "kill" });
    await waitFor("the exit report", () => exits.length >= 1);
    assert.deepEqual(exits, [{ app: "web", pid, detail: "killed by SIGKILL" }]);
  });

  test("stop on an already-dead process resolves without a second report", async (w) => {
    const exits = recordExits(w.runner);
    const { pid } = await w.runner.spawn(w.longRunning("web"));
    w.killFromOutside(pid);
    await waitFor("the exit report", () => exits.length >= 1);
    await w.runner.stop("web", pid, { signal: "SIGTERM", timeoutMs: 1000, mode: "graceful" });
    await w.runner.stop("web", pid, { signal: "SIGTERM", timeoutMs: 1000, mode: "kill" });
    await sleep(200);
    assert.equal(exits.length, 1);
  });

  test("adopt reports the exit when the adopted process dies", async (w) => {
    const exits = recordExits(w.runner);
    const external = await w.startExternal();
    w.runner.adopt("db", external.pid, external.startTime);
    await sleep(250); // a few polls while it is alive: no report
    assert.equal(exits.length, 0);
    w.killFromOutside(external.pid);
    await waitFor("the exit report", () => exits.length >= 1);
    await sleep(250);
    assert.equal(exits.length, 1);
    assert.equal(exits[0]?.app, "db");
    assert.equal(exits[0]?.pid, external.pid);
  });

  test("adopt of a process that is already gone reports its exit", async (w) => {
    const exits = recordExits(w.runner);
    const external = await w.startExternal();
    w.killFromOutside(external.pid);
    w.runner.adopt("db", external.pid, external.startTime);
    await waitFor("the exit report", () => exits.length >= 1);
    assert.equal(exits[0]?.pid, external.pid);
  });

  test("spawn rejects with an Error naming the app when the command cannot start", async (w) => {
    await assert.rejects(w.runner.spawn(w.failingSpawn("broken")), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.match(error.message, /cannot start app "broken"/);
      return true;
    });
  });

  test("detachAll stops reporting exits", async (w) => {
    const exits = recordExits(w.runner);
    const { pid } = await w.runner.spawn(w.longRunning("web"));
    w.runner.detachAll();
    w.killFromOutside(pid);
    await sleep(300);
    assert.deepEqual(exits, []);
  });
}

runnerContract("RealProcessRunner", async () => {
  const logDir = await Deno.makeTempDir({ prefix: "baton_runner_" });
  const runner = new RealProcessRunner({ pollMs: 20 });
  const pids: number[] = [];
  const externals: Deno.ChildProcess[] = [];
  const spawn = runner.spawn.bind(runner);
  runner.spawn = async (spec) => {
    const spawned = await spawn(spec);
    pids.push(spawned.pid);
    return spawned;
  };
  return {
    runner,
    longRunning: (app) => ({ app, command: ["sleep", "30"], cwd: null, env: {}, logDir }),
    failingSpawn: (app) => ({
      app,
      command: ["baton-no-such-command-xyz"],
      cwd: null,
      env: {},
      logDir,
    }),
    killFromOutside: (pid) => Deno.kill(pid, "SIGKILL"),
    startExternal: () => {
      const child = new Deno.Command("sleep", {
        args: ["30"],
        detached: true,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      externals.push(child);
      const stat = readProcStat(child.pid);
      assert.ok(stat !== null);
      return Promise.resolve({ pid: child.pid, startTime: stat.startTime });
    },
    cleanup: async () => {
      runner.detachAll();
      for (const pid of pids) killGroup(pid);
      for (const child of externals) {
        killGroup(child.pid);
        await child.status;
      }
      await Deno.remove(logDir, { recursive: true });
    },
  };
});

runnerContract("FakeProcessRunner", () => {
  const runner = new FakeProcessRunner();
  return Promise.resolve({
    runner,
    longRunning: (app) => ({ app, command: ["server"], cwd: null, env: {}, logDir: "/logs" }),
    failingSpawn: (app) => {
      runner.failNextSpawn(app, 'command "nope" not found in PATH');
      return { app, command: ["nope"], cwd: null, env: {}, logDir: "/logs" };
    },
    killFromOutside: (pid) => runner.kill(pid),
    startExternal: () => Promise.resolve(runner.startExternal()),
    cleanup: () => Promise.resolve(),
  });
});

// ---------- RealProcessRunner with real processes ----------

/** A fresh real runner, its exits, a temp log dir, and cleanup of every group it spawned. */
async function realWorld() {
  const logDir = await Deno.makeTempDir({ prefix: "baton_runner_" });
  const runner = new RealProcessRunner({ pollMs: 20 });
  const exits = recordExits(runner);
  const groups: number[] = [];
  return {
    runner,
    exits,
    logDir,
    spawn: async (app: string, command: string[], extra: Partial<SpawnSpec> = {}) => {
      const spawned = await runner.spawn({ app, command, cwd: null, env: {}, logDir, ...extra });
      groups.push(spawned.pid);
      return spawned;
    },
    track: (pgid: number) => groups.push(pgid),
    [Symbol.asyncDispose]: async () => {
      runner.detachAll();
      for (const pgid of groups) killGroup(pgid);
      await Deno.remove(logDir, { recursive: true });
    },
  };
}

Deno.test("RealProcessRunner.spawn execs the command: the PID is the app's own, in its own group", async () => {
  await using w = await realWorld();
  const { pid, startTime } = await w.spawn("sleeper", ["sleep", "30"]);
  await waitFor(
    "the exec",
    () => Deno.readTextFileSync(`/proc/${pid}/cmdline`).startsWith("sleep\0"),
  );
  const stat = readProcStat(pid);
  assert.equal(stat?.pgid, pid);
  assert.equal(stat?.startTime, startTime);
  assert.equal(isSameProcess(pid, startTime), true);
});

Deno.test("RealProcessRunner reports a kill -9 from outside as 'killed by SIGKILL'", async () => {
  await using w = await realWorld();
  const { pid } = await w.spawn("sleeper", ["sleep", "30"]);
  const kill = await new Deno.Command("kill", { args: ["-9", String(pid)] }).output();
  assert.equal(kill.success, true);
  await waitFor("the exit report", () => w.exits.length >= 1);
  assert.deepEqual(w.exits, [{ app: "sleeper", pid, detail: "killed by SIGKILL" }]);
});

Deno.test("RealProcessRunner reports the exit code of an app that exits by itself", async () => {
  await using w = await realWorld();
  const { pid } = await w.spawn("quitter", ["sh", "-c", "exit 3"]);
  await waitFor("the exit report", () => w.exits.length >= 1);
  assert.deepEqual(w.exits, [{ app: "quitter", pid, detail: "exited with code 3" }]);
});

Deno.test("RealProcessRunner.stop SIGKILLs an app that ignores SIGTERM after timeoutMs", async () => {
  await using w = await realWorld();
  const { pid } = await w.spawn("stubborn", ["sh", "-c", 'trap "" TERM; sleep 30']);
  // Once the sleep exists, the trap is installed (and inherited by the sleep).
  await waitFor("the sleep child", () => processGroupMembers(pid).length >= 2);
  await w.runner.stop("stubborn", pid, { signal: "SIGTERM", timeoutMs: 300, mode: "graceful" });
  assert.equal(readProcStat(pid) === null || readProcStat(pid)?.state === "Z", true);
  await waitFor("the exit report", () => w.exits.length >= 1);
  assert.deepEqual(w.exits, [{ app: "stubborn", pid, detail: "killed by SIGKILL" }]);
  await waitFor("the group to die", () => !processGroupAlive(pid));
});

Deno.test("RealProcessRunner.stop leaves no survivors in the app's process group", async () => {
  await using w = await realWorld();
  const { pid } = await w.spawn("family", ["sh", "-c", "sleep 30 & sleep 30"]);
  await waitFor("both sleeps", () => processGroupMembers(pid).length >= 3);
  await w.runner.stop("family", pid, { signal: "SIGTERM", timeoutMs: 5000, mode: "graceful" });
  await waitFor("the exit report", () => w.exits.length >= 1);
  await waitFor("the group to die", () => !processGroupAlive(pid));
});

Deno.test("RealProcessRunner.stop SIGKILLs a straggler that ignores SIGTERM once the leader is gone", async () => {
  await using w = await realWorld();
  const { pid } = await w.spawn("family", ["sh", "-c", '(trap "" TERM; sleep 30) & exec sleep 30']);
  await waitFor("leader and straggler", () => processGroupMembers(pid).length >= 2);
  await w.runner.stop("family", pid, { signal: "SIGTERM", timeoutMs: 10_000, mode: "graceful" });
  await waitFor("the exit report", () => w.exits.length >= 1);
  assert.equal(w.exits[0]?.detail, "killed by SIGTERM");
  await waitFor("the group to die", () => !processGroupAlive(pid));
});

Deno.test("RealProcessRunner kills stragglers of an exited app before reporting the exit", async () => {
  await using w = await realWorld();
  const { pid } = await w.spawn("family", ["sh", "-c", "sleep 30 & exec sleep 30"]);
  await waitFor("leader and straggler", () => processGroupMembers(pid).length >= 2);
  const aliveAtReport: boolean[] = [];
  w.runner.onExit(() => aliveAtReport.push(processGroupAlive(pid)));
  Deno.kill(pid, "SIGKILL"); // only the leader
  await waitFor("the exit report", () => aliveAtReport.length >= 1);
  assert.deepEqual(aliveAtReport, [false]);
});

Deno.test("RealProcessRunner.stop of a process it does not watch still stops it", async () => {
  await using w = await realWorld();
  const child = new Deno.Command("sleep", {
    args: ["30"],
    detached: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  w.track(child.pid);
  await w.runner.stop("other", child.pid, { signal: "SIGTERM", timeoutMs: 5000, mode: "graceful" });
  assert.equal((await child.status).signal, "SIGTERM");
  assert.deepEqual(w.exits, []);
});

Deno.test("RealProcessRunner.adopt reports the exit of a process that turns zombie", async () => {
  await using w = await realWorld();
  // The leader execs `sleep 30` and never reaps its background child: that child, started
  // elsewhere and not ours, becomes a zombie when it ends.
  const parent = new Deno.Command("/bin/sh", {
    args: ["-c", "sleep 1 & echo $!; exec sleep 30"],
    detached: true,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  w.track(parent.pid);
  const reader = parent.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    line += value;
  }
  await reader.cancel();
  const pid = Number(line.trim());
  const stat = readProcStat(pid);
  assert.ok(stat !== null, `expected the background child ${pid} to exist`);
  w.runner.adopt("db", pid, stat.startTime);
  await waitFor("the exit report", () => w.exits.length >= 1);
  assert.equal(readProcStat(pid)?.state, "Z", "the adopted process should still be a zombie");
  assert.deepEqual(w.exits, [{ app: "db", pid, detail: ADOPTED_EXIT_DETAIL }]);
  killGroup(parent.pid);
  await parent.status;
});

Deno.test("RealProcessRunner appends stdout and stderr to the app's log file", async () => {
  await using w = await realWorld();
  await w.spawn("talker", ["sh", "-c", "echo to-stdout; echo to-stderr >&2; echo $GREETING"], {
    env: { GREETING: "hello-env" },
  });
  await waitFor("the exit report", () => w.exits.length >= 1);
  await w.spawn("talker", ["sh", "-c", "echo second-run"]);
  await waitFor("the second exit report", () => w.exits.length >= 2);
  const log = await Deno.readTextFile(`${w.logDir}/talker.log`);
  assert.equal(log, "to-stdout\nto-stderr\nhello-env\nsecond-run\n");
});

Deno.test("RealProcessRunner runs the app in its working directory", async () => {
  await using w = await realWorld();
  await w.spawn("pwd", ["pwd"], { cwd: w.logDir });
  await waitFor("the exit report", () => w.exits.length >= 1);
  const log = await Deno.readTextFile(`${w.logDir}/pwd.log`);
  assert.equal(log, `${await Deno.realPath(w.logDir)}\n`);
});

Deno.test("RealProcessRunner.spawn rejects a missing command, a missing cwd and a bad app name", async () => {
  await using w = await realWorld();
  await assert.rejects(w.spawn("x", ["baton-no-such-command-xyz"]), /not found in PATH/);
  await assert.rejects(w.spawn("x", ["./nope.sh"]), /not found or not executable/);
  await assert.rejects(
    w.spawn("x", ["sleep", "1"], { cwd: "/nonexistent/dir" }),
    /working directory/,
  );
  await assert.rejects(w.spawn("x", []), /non-empty command/);
  await assert.rejects(w.spawn("../x", ["sleep", "1"]), /app name/);
  assert.deepEqual(w.runner.watched(), []);
});

/**
 * Runs a tiny agent (in its own process group, as a shell would) that spawns an app writing a
 * line every 50 ms, then ends the agent per `mode`: it exits by itself, it is SIGKILLed, or its
 * whole process group gets SIGINT (Ctrl-C in a terminal). The app must outlive the agent: no
 * shared process group, and no pipe to the agent that would SIGPIPE it.
 */
async function agentThatSpawns(mode: "exit" | "sigkill" | "group-sigint"): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "baton_agent_" });
  const script = `${dir}/agent.ts`;
  await Deno.writeTextFile(
    script,
    `const { RealProcessRunner } = await import(Deno.args[0]);
const runner = new RealProcessRunner();
const s = await runner.spawn({
  app: "ticker", command: ["sh", "-c", "while :; do echo tick; sleep 0.05; done"],
  cwd: null, env: {}, logDir: Deno.args[1],
});
await Deno.writeTextFile(Deno.args[1] + "/spawned.json", JSON.stringify(s));
if (Deno.args[2] !== "exit") setInterval(() => {}, 1000);
`,
  );
  const moduleUrl = new URL("../src/supervisor/real_runner.ts", import.meta.url).href;
  const agent = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", script, moduleUrl, dir, mode],
    detached: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const spawnedFile = `${dir}/spawned.json`;
  let app: Spawned | null = null;
  try {
    if (mode !== "exit") {
      await waitFor("the agent to spawn", () => {
        try {
          app = JSON.parse(Deno.readTextFileSync(spawnedFile));
          return true;
        } catch {
          return false;
        }
      }, 30_000);
      if (mode === "sigkill") agent.kill("SIGKILL");
      else Deno.kill(-agent.pid, "SIGINT");
    }
    // The agent must end (by itself in "exit" mode: the unref'd child cannot hold it).
    const status = await agent.status;
    const stderr = await agent.stderr.text();
    if (mode === "exit") assert.equal(status.code, 0, `agent failed: ${stderr}`);
    else assert.equal(status.signal, mode === "sigkill" ? "SIGKILL" : "SIGINT");
    app = JSON.parse(await Deno.readTextFile(spawnedFile)) as Spawned;
    const { pid, startTime } = app;
    const before = (await Deno.stat(`${dir}/ticker.log`)).size;
    await waitFor(
      "the app to keep writing its log",
      () => Deno.statSync(`${dir}/ticker.log`).size > before + 20,
    );
    assert.equal(isSameProcess(pid, startTime), true, "the app must survive its agent");
  } finally {
    if (app !== null) killGroup((app as Spawned).pid);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("RealProcessRunner: a spawned app survives its agent exiting", async () => {
  await agentThatSpawns("exit");
});

Deno.test("RealProcessRunner: a spawned app survives its agent being SIGKILLed", async () => {
  await agentThatSpawns("sigkill");
});

Deno.test("RealProcessRunner: a spawned app survives a SIGINT to its agent's process group", async () => {
  await agentThatSpawns("group-sigint");
});

// ---------- FakeProcessRunner specifics ----------

Deno.test("FakeProcessRunner records calls and makes crash() report the given detail", async () => {
  const runner = new FakeProcessRunner();
  const exits = recordExits(runner);
  const spec: SpawnSpec = { app: "web", command: ["web"], cwd: null, env: {}, logDir: "/l" };
  const { pid } = await runner.spawn(spec);
  assert.equal(runner.processOf("web")?.pid, pid);
  runner.crash("web", "exited with code 1");
  await runner.settle();
  assert.deepEqual(exits, [{ app: "web", pid, detail: "exited with code 1" }]);
  assert.deepEqual(runner.calls, [{ type: "spawn", spec }]);
  assert.equal(runner.processOf("web"), null);
  assert.throws(() => runner.crash("web"), /expected a live process of app "web"/);
});

Deno.test("FakeProcessRunner.failNextSpawn fails exactly one spawn", async () => {
  const runner = new FakeProcessRunner();
  runner.failNextSpawn("web", "boom");
  const spec: SpawnSpec = { app: "web", command: ["web"], cwd: null, env: {}, logDir: "/l" };
  await assert.rejects(runner.spawn(spec), /cannot start app "web": boom/);
  const second = await runner.spawn(spec);
  assert.ok(runner.isSameProcess(second.pid, second.startTime));
});

Deno.test("FakeProcessRunner.stop escalates to SIGKILL after timeoutMs for an app ignoring SIGTERM", async () => {
  const runner = new FakeProcessRunner();
  const exits = recordExits(runner);
  runner.ignoreStopSignal("web");
  const { pid, startTime } = await runner.spawn({
    app: "web",
    command: ["web"],
    cwd: null,
    env: {},
    logDir: "/l",
  });
  await runner.stop("web", pid, { signal: "SIGTERM", timeoutMs: 20, mode: "graceful" });
  assert.equal(runner.isSameProcess(pid, startTime), false);
  await runner.settle();
  assert.deepEqual(exits, [{ app: "web", pid, detail: "killed by SIGKILL" }]);
});

Deno.test("exitDetail formats exit codes and signals", () => {
  assert.equal(exitDetail({ code: 0, signal: null }), "exited with code 0");
  assert.equal(exitDetail({ code: 143, signal: "SIGTERM" }), "killed by SIGTERM");
});
