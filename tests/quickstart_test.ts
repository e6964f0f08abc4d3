/**
 * The README's "Quick start (one host)", followed literally: the test reads the commands from
 * the README's code block, checks they are the ones it runs, and runs them as a newcomer would
 * in an empty directory: `baton init`, `baton validate`, `baton run --state-dir ./state`,
 * `baton status`, `kill -9` of the web app (restarted, restarts 1), `kill -9` of its new pid
 * (escalation with no peer: restarted with backoff, loudly), then an edit and `baton reload`.
 * `baton` is `deno run` of main.ts with the flags of the compiled binary (`batonCommand`).
 *
 * The example manifest listens on fixed ports (7401 for the agent, 8080 for the web app), so
 * as root the test runs every command inside a fresh network namespace (its own loopback);
 * otherwise it runs on the host if those ports are free, and is skipped with the reason if not.
 * Needs `python3` (the example's web app is `python3 -m http.server`).
 */
import assert from "node:assert/strict";
import { alive, batonCommand, killGroup, poll } from "../scripts/local_cluster.ts";
import type { StatusDoc } from "../src/agent/status.ts";
import { runBaton } from "./helpers/cli_run.ts";

const README = new URL("../README.md", import.meta.url);
const WAIT_MS = 60_000;

/** The commands of the README's quick start block (text before each `#`, trimmed). */
async function quickStartCommands(): Promise<string[]> {
  const text = await Deno.readTextFile(README);
  const at = text.indexOf("## Quick start (one host)");
  assert.ok(at >= 0, "README has a Quick start (one host) section");
  const block = /```sh\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(block?.[1], "the quick start has a sh code block");
  return block[1].split("\n").map((l) => l.replace(/#.*$/, "").trim()).filter((l) => l !== "");
}

function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[]): { code: number; out: string } {
  try {
    const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" })
      .outputSync();
    const dec = new TextDecoder();
    return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  } catch (err) {
    return { code: -1, out: String(err) };
  }
}

/** Where the commands run: a fresh network namespace (root), else the host if the ports are free. */
function placement(): { ns: string | null } | { skip: string } {
  if (run("python3", ["--version"]).code !== 0) return { skip: "python3 is not installed" };
  if (Deno.uid() === 0 && run("ip", ["-V"]).code === 0) {
    const ns = `btnqs${crypto.randomUUID().slice(0, 6)}`;
    if (run("ip", ["netns", "add", ns]).code === 0) {
      if (run("ip", ["-n", ns, "link", "set", "lo", "up"]).code === 0) return { ns };
      run("ip", ["netns", "del", ns]);
    }
  }
  if (portFree(7401) && portFree(8080)) return { ns: null };
  return { skip: "not root (no network namespace) and port 7401 or 8080 is in use" };
}

const PLACE = placement();

Deno.test({
  name: "README quick start, followed literally: an app runs, is restarted after kill -9, reload",
  ignore: "skip" in PLACE,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    assert.ok(!("skip" in PLACE));
    const ns = PLACE.ns;
    const dir = await Deno.makeTempDir({ prefix: "baton-quickstart-" });
    const env = Deno.env.toObject();
    for (const k of Object.keys(env)) if (k.startsWith("BATON_")) delete env[k];
    env.BATON_SYSTEM_MANIFEST = `${dir}/no-such-system-manifest.yaml`;
    /** argv of `baton ...args`, inside the namespace if there is one. */
    const argv = (...args: string[]) => {
      const cmd = batonCommand(...args);
      return ns ? ["ip", "netns", "exec", ns, ...cmd] : cmd;
    };
    const baton = (...args: string[]) =>
      runBaton(args, {
        cwd: dir,
        netns: ns,
        env: { BATON_SYSTEM_MANIFEST: env.BATON_SYSTEM_MANIFEST! },
      });
    const status = async (): Promise<StatusDoc | null> => {
      const r = await baton("status", "--json");
      return r.code === 0 ? JSON.parse(r.stdout) as StatusDoc : null;
    };
    const web = (s: StatusDoc | null) => s?.apps.find((a) => a.name === "web");

    const commands = await quickStartCommands();
    for (
      const c of ["baton init", "baton validate", "baton run --state-dir ./state", "baton status"]
    ) {
      assert.ok(commands.includes(c), `the README quick start runs \`${c}\`: ${commands}`);
    }
    assert.ok(commands.some((c) => c.startsWith("kill -9")), "it kills an app with kill -9");
    assert.ok(commands.some((c) => c.endsWith("baton reload")), "it ends with baton reload");

    let agent: Deno.ChildProcess | null = null;
    const appPids = new Set<number>();
    try {
      let r = await baton("init");
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /one node/);
      r = await baton("validate");
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /baton\.yaml: ok/);

      const [program, ...rest] = argv("run", "--state-dir", "./state");
      const log = await Deno.open(`${dir}/agent.log`, { write: true, create: true });
      agent = new Deno.Command(program!, {
        args: rest,
        cwd: dir,
        env,
        clearEnv: true,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      agent.stderr.pipeTo(log.writable).catch(() => {});
      const logText = () => Deno.readTextFileSync(`${dir}/agent.log`);

      const up = await poll("web and worker running", async () => {
        const s = await status();
        return s?.role === "active" &&
            s.apps.every((a) => a.state === "running" && a.pid !== null) && s.apps.length === 2
          ? s
          : null;
      }, WAIT_MS).catch((err) => {
        throw new Error(`${err}\nagent output:\n${logText()}`);
      });
      const text = await baton("status");
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /ACTIVE/);
      assert.match(text.stdout, /^web\s+running\s+\d+/m);
      assert.match(text.stdout, /^worker\s+running\s+\d+/m);
      for (const a of up.apps) appPids.add(a.pid!);

      // kill -9 <pid of an app>: restarted at once, restarts 1.
      const pid1 = web(up)!.pid!;
      Deno.kill(pid1, "SIGKILL");
      const again = await poll("web restarted with a new pid", async () => {
        const s = await status();
        const w = web(s);
        return w?.state === "running" && w.pid !== null && w.pid !== pid1 ? s : null;
      }, WAIT_MS);
      assert.equal(web(again)!.restarts, 1);
      const pid2 = web(again)!.pid!;
      appPids.add(pid2);

      // kill -9 <its new pid>: escalation; with no peer it is restarted with backoff, loudly.
      Deno.kill(pid2, "SIGKILL");
      const third = await poll("web restarted after the escalation", async () => {
        const s = await status();
        const w = web(s);
        return w?.state === "running" && w.pid !== null && w.pid !== pid2 ? s : null;
      }, WAIT_MS);
      appPids.add(web(third)!.pid!);
      assert.equal(third.role, "active");
      assert.ok(
        third.events.some((e) => e.kind === "no_handover" && /single-node/.test(e.message)),
        `a loud record that nothing can take over: ${JSON.stringify(third.events.slice(-8))}`,
      );
      // Once the restarted web answers its check, the log shows the two kills and no
      // "flapping": the example's check waits its initialDelay, so no start-up check fails.
      await poll("web's check passing after the escalation", async () => {
        const w = web(await status());
        return w?.pid === web(third)!.pid && w?.lastCheck?.ok === true;
      }, WAIT_MS);
      const ev = await baton("events", "--json");
      assert.equal(ev.code, 0, ev.stderr);
      const kinds = ev.stdout.trim().split("\n").map((l) => JSON.parse(l) as { kind: string });
      const count = (k: string) => kinds.filter((e) => e.kind === k).length;
      console.log(
        `quick start log: ${count("restart")} restart, ${count("escalation")} escalation, ` +
          `${count("check_failed")} check_failed, ${count("flapping")} flapping`,
      );
      assert.equal(count("flapping"), 0, "a spurious flapping record in the quick start");
      assert.equal(count("restart"), 1);
      assert.equal(count("escalation"), 1);

      // $EDITOR baton.yaml && baton reload: the added app starts, the rest is untouched.
      await Deno.writeTextFile(
        `${dir}/baton.yaml`,
        "  extra:\n    command: [sleep, infinity]\n    movable: false\n",
        { append: true },
      );
      r = await baton("reload");
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const reloaded = await poll("extra running after reload", async () => {
        const s = await status();
        return s?.apps.find((a) => a.name === "extra" && a.state === "running" && a.pid) ? s : null;
      }, WAIT_MS);
      for (const a of reloaded.apps) if (a.pid) appPids.add(a.pid);
      assert.equal(web(reloaded)!.pid, web(third)!.pid, "reload leaves web alone");
    } finally {
      if (agent) {
        try {
          agent.kill("SIGKILL");
        } catch { /* gone */ }
        await agent.status;
      }
      for (const pid of appPids) if (alive(pid)) killGroup(pid);
      if (ns) {
        for (const pid of run("ip", ["netns", "pids", ns]).out.split(/\s+/).filter(Boolean)) {
          killGroup(Number(pid));
        }
        run("ip", ["netns", "del", ns]);
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
