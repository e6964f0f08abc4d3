/**
 * State directory faults: a truncated or garbage `state.json` (the agent must refuse to start,
 * say why, exit non-zero, and start or stop nothing), an unusable state directory at start,
 * and a standby that cannot write its state when it should take over (read-only directory,
 * full disk): it must never start an app under an epoch that is not on disk.
 *
 * The read-only and disk-full cases need root and `mount` (a read-only bind mount, a 64 KiB
 * tmpfs); where they cannot be made the tests are skipped and say why.
 *
 * @module
 */
import assert from "node:assert/strict";
import { batonCommand, killGroup, LocalCluster, type Status } from "../scripts/local_cluster.ts";
import { readProcStat } from "../src/supervisor/proc.ts";
import { appsYaml, measured, newRunId, poll, RUN_MARK, sleep } from "./fault_kit.ts";
import { findAppProcesses } from "./proc_census.ts";
import { formatReport, WorkerSampler } from "./sampler.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };

/** Whether mounts can be made here (root and a working `mount`), and why not. */
function probeMount(): { ok: boolean; reason: string } {
  if (Deno.uid() !== 0) return { ok: false, reason: `needs root, running as uid ${Deno.uid()}` };
  const dir = Deno.makeTempDirSync({ prefix: "baton-faults-mnt-" });
  try {
    const r = new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    if (!r.success) {
      return { ok: false, reason: `mount failed: ${new TextDecoder().decode(r.stderr).trim()}` };
    }
    new Deno.Command("umount", { args: [dir] }).outputSync();
    return { ok: true, reason: "" };
  } catch (err) {
    return { ok: false, reason: `cannot run mount: ${(err as Error).message}` };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const mountSupport = probeMount();
if (!mountSupport.ok) {
  console.log(`[faults] state dir tests with mounts SKIPPED: ${mountSupport.reason}`);
}

async function run(cmd: string, ...args: string[]): Promise<void> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(
      `expected \`${cmd} ${args.join(" ")}\` to succeed, found exit ${r.code}: ` +
        new TextDecoder().decode(r.stderr),
    );
  }
}

/** Unmount `dir` (lazily if busy); never throws. */
async function unmount(dir: string): Promise<void> {
  for (const args of [[dir], ["-l", dir]]) {
    const r = await new Deno.Command("umount", { args, stdout: "null", stderr: "null" }).output()
      .catch(() => null);
    if (r?.success) return;
  }
}

/** Run `baton run` for a node and expect it to exit by itself within 30 s. */
async function runAgentExpectingExit(
  c: LocalCluster,
  node: string,
  stateDir: string,
): Promise<{ code: number; output: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: batonCommand("run", "--manifest", c.manifest, "--node", node, "--state-dir", stateDir)
      .slice(1),
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, 30_000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  const output = dec.decode(out.stdout) + dec.decode(out.stderr);
  assert.ok(out.signal === null, `expected the agent to refuse and exit, it ran on:\n${output}`);
  return { code: out.code, output };
}

/** A cluster of alpha and beta with one movable sample app `web`, marked with `run`. */
function clusterOpts(run: string, witness: boolean) {
  return {
    nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
    witness,
    interval: "100ms",
    deadAfter: "1s",
    appPorts: 1,
    apps: ([web]: number[]) =>
      appsYaml([{ name: "web", port: web!, env: { [RUN_MARK]: run }, check: null }]),
  };
}

function census(run: string) {
  return findAppProcesses((p) => p.env[RUN_MARK] === run);
}

Deno.test({
  name: "state dir: truncated, garbage, wrong-shape or foreign state.json → the agent refuses " +
    "to start with a message naming the file, exits non-zero, starts and stops nothing",
  ...OPTS,
  fn: async () => {
    const runId = newRunId();
    const c = await LocalCluster.create(clusterOpts(runId, false));
    let appPid = 0;
    try {
      // A real state file: alpha alone becomes active and starts web; then its agent dies
      // (kill -9) and web, recorded in the file, keeps running. It must survive every refusal.
      await c.startAgent("alpha");
      await c.waitRunning("alpha", ["web"], 30_000);
      appPid = await poll(
        "alpha to record web",
        async () => (await c.recordedPids("alpha"))[0],
        20_000,
      );
      await c.killAgent("alpha");
      const valid = await Deno.readTextFile(`${c.stateDir("alpha")}/state.json`);
      assert.match(valid, /"epoch": \d+,\n/, "expected the state file format this test edits");
      const variants: [string, string | Uint8Array][] = [
        ["truncated", valid.slice(0, Math.floor(valid.length / 2))],
        ["empty", ""],
        ["garbage bytes", crypto.getRandomValues(new Uint8Array(300))],
        ["not an object", "[1, 2, 3]\n"],
        ["wrong version", valid.replace('"version": 1', '"version": 7')],
        ["missing field", valid.replace(/ *"epoch": \d+,\n/, "")],
        ["another node's state", valid.replace('"node": "alpha"', '"node": "beta"')],
      ];
      for (const [what, content] of variants) {
        const dir = `${c.dir}/state-${what.replaceAll(" ", "-").replaceAll("'", "")}`;
        await Deno.mkdir(dir, { recursive: true });
        const file = `${dir}/state.json`;
        if (typeof content === "string") await Deno.writeTextFile(file, content);
        else await Deno.writeFile(file, content);
        const before = await Deno.readFile(file);
        const r = await runAgentExpectingExit(c, "alpha", dir);
        const first = r.output.trim().split("\n").find((l) => /state/i.test(l)) ?? r.output;
        measured("bad state.json", `${what}: exit ${r.code}: ${first.slice(0, 200)}`);
        assert.notEqual(r.code, 0, `${what}: expected a non-zero exit`);
        assert.match(r.output, /state/i, `${what}: expected the message to be about the state`);
        assert.ok(
          r.output.includes(file) || r.output.includes(dir),
          `${what}: expected the message to name ${file}:\n${r.output}`,
        );
        assert.deepEqual(await Deno.readFile(file), before, `${what}: expected the file untouched`);
        const procs = census(runId);
        assert.deepEqual(procs.map((p) => p.pid), [appPid], `${what}: expected no app started`);
      }
      assert.ok(readProcStat(appPid), "expected the recorded app never to be stopped");
    } finally {
      if (appPid) killGroup(appPid);
      await c.stop();
    }
  },
});

Deno.test({
  name: "state dir: unusable at start (a path under a regular file; a read-only mount) → the " +
    "agent refuses with a clear error and a non-zero exit, starting nothing",
  ...OPTS,
  fn: async () => {
    const runId = newRunId();
    const c = await LocalCluster.create(clusterOpts(runId, false));
    const ro = `${c.dir}/state-ro`;
    let mounted = false;
    try {
      await Deno.writeTextFile(`${c.dir}/plain-file`, "x");
      const cases: [string, string][] = [["under a file", `${c.dir}/plain-file/state`]];
      if (mountSupport.ok) {
        await Deno.mkdir(ro);
        await run("mount", "--bind", ro, ro);
        mounted = true;
        await run("mount", "-o", "remount,bind,ro", ro);
        cases.push(["read-only mount", ro]);
      } else {
        console.log(`[faults] read-only state dir case SKIPPED: ${mountSupport.reason}`);
      }
      for (const [what, dir] of cases) {
        const r = await runAgentExpectingExit(c, "alpha", dir);
        const line = r.output.trim().split("\n").find((l) =>
          /error|cannot|denied|read-only/i.test(l)
        );
        measured(
          "unusable state dir",
          `${what}: exit ${r.code}: ${(line ?? r.output).slice(0, 200)}`,
        );
        assert.notEqual(r.code, 0, `${what}: expected a non-zero exit`);
        assert.ok(
          r.output.includes(dir),
          `${what}: expected the message to name ${dir}:\n${r.output}`,
        );
        assert.deepEqual(census(runId), [], `${what}: expected no app started`);
      }
    } finally {
      if (mounted) await unmount(ro);
      await c.stop();
    }
  },
});

/** Whether `chattr +i` works on files under the temp dir, and why not. */
function probeChattr(): { ok: boolean; reason: string } {
  if (Deno.uid() !== 0) return { ok: false, reason: `needs root, running as uid ${Deno.uid()}` };
  const dir = Deno.makeTempDirSync({ prefix: "baton-faults-attr-" });
  try {
    Deno.writeTextFileSync(`${dir}/f`, "x");
    const r = new Deno.Command("chattr", { args: ["+i", `${dir}/f`], stderr: "piped" })
      .outputSync();
    if (!r.success) {
      return {
        ok: false,
        reason: `chattr +i failed: ${new TextDecoder().decode(r.stderr).trim()}`,
      };
    }
    new Deno.Command("chattr", { args: ["-i", `${dir}/f`] }).outputSync();
    return { ok: true, reason: "" };
  } catch (err) {
    return { ok: false, reason: `cannot run chattr: ${(err as Error).message}` };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const chattrSupport = probeChattr();
if (!chattrSupport.ok) {
  console.log(`[faults] immutable state.json test SKIPPED: ${chattrSupport.reason}`);
}

/**
 * Fill the filesystem of `path` with one file and keep it full: after the first ENOSPC, a write
 * every 5 ms takes any page freed since. `full` resolves once it is full; `stop` ends it and
 * returns how many 4 KiB chunks it took back after the fill.
 */
function keepFull(path: string) {
  const chunk = new Uint8Array(4096);
  let running = true;
  let filled = false;
  let taken = 0;
  const full = Promise.withResolvers<void>();
  const loop = (async () => {
    const file = await Deno.open(path, { write: true, create: true });
    try {
      while (running) {
        let n = 0;
        try {
          n = await file.write(chunk);
        } catch { /* ENOSPC */ }
        if (filled && n > 0) taken++;
        if (n === chunk.length) continue;
        // A short write or ENOSPC: full now; look again in 5 ms for a freed page.
        filled = true;
        full.resolve();
        await sleep(5);
      }
    } finally {
      file.close();
    }
  })();
  loop.then(() => full.resolve(), (err) => full.reject(err));
  return {
    full: full.promise,
    stop: async () => {
      running = false;
      await loop;
      return taken;
    },
  };
}

/**
 * How beta's state is made unwritable while it runs: the whole directory read-only, the
 * disk full, or only `state.json` immutable (the rest of the directory, app logs included,
 * stays writable, so nothing but the state write can stop a start).
 */
type Breakage = "read-only" | "disk full" | "immutable state.json";

for (const breakage of ["read-only", "disk full", "immutable state.json"] as Breakage[]) {
  const support = breakage === "immutable state.json" ? chattrSupport : mountSupport;
  Deno.test({
    name: `state dir: standby whose state is ${breakage} when the active dies → logs the ` +
      `write error and starts no app; once writable again it takes over`,
    ignore: !support.ok,
    ...OPTS,
    fn: async () => {
      const runId = newRunId();
      const c = await LocalCluster.create(clusterOpts(runId, true));
      const dir = c.stateDir("beta");
      let mounted = false;
      let immutable = false;
      let refiller: ReturnType<typeof keepFull> | null = null;
      let sampler: WorkerSampler | null = null;
      let ok = false;
      try {
        await Deno.mkdir(dir, { recursive: true });
        if (breakage === "disk full") {
          await run("mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", dir);
          mounted = true;
        }
        c.startWitness();
        await c.startAgent("alpha");
        // beta starts once alpha is active: a slow start of alpha must not make beta active.
        await c.waitRole("alpha", "active", 30_000);
        await c.startAgent("beta");
        await c.waitRunning("alpha", ["web"], 30_000);
        await c.waitRole("beta", "standby", 30_000);
        await poll(
          "alpha to record web",
          async () => (await c.recordedPids("alpha")).length === 1,
          20_000,
        );
        const epochBefore = (await c.status("beta"))!.epoch;
        // Break beta's state directory while it runs.
        if (breakage === "read-only") {
          await run("mount", "--bind", dir, dir);
          mounted = true;
          // A fresh bind mount can be briefly "busy" on a loaded machine: retry, bounded.
          for (let i = 0;; i++) {
            try {
              await run("mount", "-o", "remount,bind,ro", dir);
              break;
            } catch (err) {
              if (i >= 9) throw err;
              await sleep(300);
            }
          }
        } else if (breakage === "immutable state.json") {
          await Deno.mkdir(`${dir}/logs`, { recursive: true });
          await run("chattr", "+i", `${dir}/state.json`);
          immutable = true;
        } else {
          // Full, and kept full: a page another writer frees (the agent replacing a file of
          // its own) is taken back by the filler within a few ms, so the disk stays full for
          // beta's new epoch, not only at the instant of the fill.
          refiller = keepFull(`${dir}/filler`);
          await refiller.full;
        }
        sampler = await WorkerSampler.start(["web"], {
          kind: "env",
          mark: RUN_MARK,
          value: runId,
        });
        await c.killHost("alpha");
        // Beta would take over now; give it several deadAfters and backoff restarts.
        await sleep(6000);
        const repairAt = sampler.elapsed();
        const stuck: Status | null = await c.status("beta");
        const log = await Deno.readTextFile(`${c.dir}/beta.log`);
        const errLine = log.split("\n").find((l) => /cannot write state|persist/i.test(l));
        const broken = (await sampler.stop()).transitions.filter((t) => t.atMs < repairAt);
        sampler = await WorkerSampler.start(["web"], {
          kind: "env",
          mark: RUN_MARK,
          value: runId,
        });
        const startedOnBeta = broken.filter((t) => t.hosts.includes("beta"));
        measured(
          breakage,
          `beta while it cannot write: role ${stuck?.role} epoch ${stuck?.epoch} ` +
            `(${stuck?.roleReason}); web seen on beta: ${
              startedOnBeta.map((t) => `+${t.atMs} ms`).join(", ") || "never"
            }; log: ${errLine?.slice(0, 220) ?? "(no write error logged)"}`,
        );
        assert.deepEqual(
          startedOnBeta,
          [],
          "expected no app started while the new epoch could not be written",
        );
        assert.ok(errLine, "expected the write error in beta's log");
        assert.ok(
          stuck?.warnings.some((w) => w.startsWith("STATE NOT WRITTEN")),
          `expected beta's status to warn that its state is not written: ${stuck?.warnings}`,
        );
        // Repair: beta must take over now.
        if (breakage === "read-only") {
          await unmount(dir);
          mounted = false;
        } else if (breakage === "immutable state.json") {
          await run("chattr", "-i", `${dir}/state.json`);
          immutable = false;
        } else {
          const taken = await refiller!.stop();
          refiller = null;
          measured(breakage, `pages freed by others and taken back by the filler: ${taken}`);
          await Deno.remove(`${dir}/filler`);
        }
        const s = await c.waitRunning("beta", ["web"], 60_000);
        const r = await sampler.stop();
        sampler = null;
        measured(
          `${breakage}`,
          `after repair: beta ${s.role}@${s.epoch}\n` +
            formatReport(r),
        );
        assert.equal(r.duplicateSamples, 0);
        assert.equal(s.role, "active");
        assert.ok(s.epoch > epochBefore, "expected a new epoch");
        // The start itself is saved right after it; the role and epoch were saved before it.
        await poll("beta's state file to say active at its epoch", async () => {
          const disk = JSON.parse(await Deno.readTextFile(`${dir}/state.json`));
          return disk.role === "active" && disk.epoch === s.epoch;
        }, 10_000);
        ok = true;
      } finally {
        if (sampler) await sampler.stop().catch(() => {});
        if (refiller) await refiller.stop().catch(() => 0);
        if (immutable) await run("chattr", "-i", `${dir}/state.json`).catch(() => {});
        if (!ok) {
          // The tmpfs goes with the unmount: keep a copy of what beta wrote there.
          if (mounted) await run("cp", "-a", dir, `${dir}.copy`).catch(() => {});
          console.log(`[faults] ${breakage} state FAILED; files in ${c.dir}`);
        }
        // Agents first: a busy mount cannot be unmounted.
        await c.stop({ keepDir: true });
        if (mounted) await unmount(dir);
        if (ok) await Deno.remove(c.dir, { recursive: true }).catch(() => {});
      }
    },
  });
}
