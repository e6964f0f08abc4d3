/**
 * Integration tests of "baton on one host": real agents started as `baton run` (through
 * `batonCommand`, the flags of the compiled binary), a one-node manifest, real app processes
 * (the sample app and `sleep infinity`), observed through `GET /v1/status`, the CLI, `/proc`
 * and the state directory. Every wait is bounded and generous; timings are printed, never
 * asserted as upper bounds.
 *
 * Each app's argv carries a unique marker so its processes can be counted by scanning
 * `/proc/<pid>/cmdline` (no duplicates after an agent restart).
 */
import assert from "node:assert/strict";
import {
  alive,
  killGroup,
  LocalCluster,
  type LocalClusterOptions,
  sampleAppCommand,
} from "../scripts/local_cluster.ts";
import type { StatusDoc } from "../src/agent/status.ts";
import { PeerClient, PeerError } from "../src/peer/client.ts";
import { readProcStat } from "../src/supervisor/proc.ts";

const NODE = "solo";
const IT = { sanitizeOps: false, sanitizeResources: false } as const;

// ---------------------------------------------------------------- helpers

/** Every marker handed out: whatever still runs with one is killed when its test ends. */
const MARKERS = new Set<string>();

/** A token unique to this test run, used in an app's argv to find its processes in /proc. */
function marker(prefix: string): string {
  const m = `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
  MARKERS.add(m);
  return m;
}

/** `sleep infinity <n>`: GNU sleep sums its arguments, so `<n>` is a harmless unique marker. */
function sleeper(): { command: string[]; marker: string } {
  const digits = String(crypto.getRandomValues(new Uint32Array(1))[0]).padStart(10, "0");
  const m = `0.00${digits}`;
  MARKERS.add(m);
  return { command: ["sleep", "infinity", m], marker: m };
}

/** YAML of one app under `apps:` (indented by 2). */
function appYaml(name: string, command: string[], extra: string[] = []): string {
  return [
    `  ${name}:`,
    `    command: ${JSON.stringify(command)}`,
    ...extra.map((l) => `    ${l}`),
  ].join("\n");
}

/** PIDs of live (non-zombie) processes whose argv contains `token` as a whole argument. */
function pidsWithArg(token: string): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    if (pid === Deno.pid) continue;
    let argv: string[];
    try {
      argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    } catch {
      continue;
    }
    if (argv.includes(token) && alive(pid)) found.push(pid);
  }
  return found.sort((a, b) => a - b);
}

/**
 * Wait until the live processes with `token` in their argv are exactly `pids` (a process
 * being exec'd can briefly show no argv), then assert it.
 */
async function expectProcs(c: LocalCluster, token: string, pids: number[], what: string) {
  const want = [...pids].sort((a, b) => a - b);
  const same = () => JSON.stringify(pidsWithArg(token)) === JSON.stringify(want);
  await c.waitFor(what, () => Promise.resolve(same()), 5_000).catch(() => {});
  assert.deepEqual(pidsWithArg(token), want, what);
}

/** Environment of a process, from /proc. */
function environOf(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0")) {
    const i = kv.indexOf("=");
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

/** The full status document (`GET /v1/status`), or null when the agent does not answer. */
async function statusDoc(c: LocalCluster): Promise<StatusDoc | null> {
  try {
    const res = await fetch(`${c.url(NODE)}/v1/status`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    return await res.json() as StatusDoc;
  } catch {
    return null;
  }
}

function appIn(doc: StatusDoc, name: string) {
  const a = doc.apps.find((x) => x.name === name);
  assert.ok(a, `expected app ${name} in status, found ${doc.apps.map((x) => x.name).join(", ")}`);
  return a;
}

function pidOf(doc: StatusDoc, name: string): number {
  const pid = appIn(doc, name).pid;
  assert.ok(pid !== null, `expected ${name} to have a pid, found null (${appIn(doc, name).state})`);
  return pid;
}

/** Wait until `app` runs with a pid other than `oldPid`; returns the status and the new pid. */
async function waitNewPid(
  c: LocalCluster,
  app: string,
  oldPid: number,
  timeoutMs = 15_000,
): Promise<{ doc: StatusDoc; pid: number }> {
  return await c.waitFor(`${app} running with a pid other than ${oldPid}`, async () => {
    const doc = await statusDoc(c);
    const a = doc?.apps.find((x) => x.name === app);
    return doc && a && a.state === "running" && a.pid !== null && a.pid !== oldPid
      ? { doc, pid: a.pid }
      : null;
  }, timeoutMs);
}

/** Wait until every app named runs; returns the status document. */
async function waitAllRunning(c: LocalCluster, apps: string[], timeoutMs = 20_000) {
  return await c.waitFor(`${apps.join(", ")} running`, async () => {
    const doc = await statusDoc(c);
    return doc && apps.every((a) => doc.apps.some((x) => x.name === a && x.state === "running"))
      ? doc
      : null;
  }, timeoutMs);
}

/** Wait until the sample app on `port` answers /info; returns its JSON. */
async function waitInfo(c: LocalCluster, port: number, pid?: number) {
  return await c.waitFor(`sample app on port ${port} answering /info`, async () => {
    const res = await fetch(`http://127.0.0.1:${port}/info`, { signal: AbortSignal.timeout(2000) });
    const info = await res.json() as {
      name: string;
      pid: number;
      epoch: string | null;
      node: string | null;
    };
    return pid === undefined || info.pid === pid ? info : null;
  }, 30_000);
}

async function eventKinds(c: LocalCluster): Promise<{ kind: string; app: string | null }[]> {
  const res = await fetch(`${c.url(NODE)}/v1/events?n=1000`, {
    signal: AbortSignal.timeout(2000),
  });
  return (await res.json() as { events: { kind: string; app: string | null }[] }).events;
}

async function logText(c: LocalCluster): Promise<string> {
  try {
    return await Deno.readTextFile(`${c.dir}/${NODE}.log`);
  } catch {
    return "";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function soloCluster(
  apps: (ports: number[]) => string,
  appPorts = 1,
  extra: Partial<LocalClusterOptions> = {},
): Promise<LocalCluster> {
  return await LocalCluster.create({
    nodes: [{ name: NODE, priority: 100 }],
    appPorts,
    apps,
    ...extra,
  });
}

/** On failure, show the agent's log: the reason is usually there. */
async function withCluster(c: LocalCluster, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    console.error(`---- ${NODE}.log ----\n${(await logText(c)).slice(-6000)}\n----`);
    throw err;
  } finally {
    await c.stop();
    // Safety net: a process the state file did not record (a failed test) must not outlive it.
    for (const m of MARKERS) for (const pid of pidsWithArg(m)) killGroup(pid);
    MARKERS.clear();
  }
}

// ---------------------------------------------------------------- 1, 2, 8, 9

Deno.test(
  "baton run: kill -9 of an app restarts it once at once, a second kill escalates and backs off",
  IT,
  async (t) => {
    const webMarker = marker("web");
    const sl = sleeper();
    const c = await soloCluster((p) =>
      [
        appYaml("web", sampleAppCommand(p[0]!, webMarker), [
          "restart: { limit: 1, window: 10m, backoff: 300ms, backoffMax: 1s }",
        ]),
        appYaml("sl", sl.command),
      ].join("\n")
    );
    await withCluster(c, async () => {
      await c.startAgent(NODE);
      const first = await waitAllRunning(c, ["web", "sl"]);
      const web0 = pidOf(first, "web");
      const sl0 = pidOf(first, "sl");
      assert.equal(first.role, "active");

      let web1 = 0;
      await t.step("apps get BATON_NODE, BATON_APP and BATON_EPOCH", async () => {
        const info = await waitInfo(c, c.appPorts[0]!, web0);
        assert.equal(info.name, webMarker);
        assert.equal(info.node, NODE);
        assert.equal(info.epoch, String(first.epoch));
        const env = environOf(web0);
        assert.equal(env["BATON_APP"], "web");
        assert.equal(env["BATON_NODE"], NODE);
        assert.equal(env["BATON_EPOCH"], String(first.epoch));
        assert.equal(environOf(sl0)["BATON_APP"], "sl");
        assert.equal(env["BATON_SECRET"], undefined, "the secret must not leak to apps");
      });

      await t.step("kill -9 gives a new pid with restarts 1, noticed from the exit", async () => {
        const t0 = performance.now();
        Deno.kill(web0, "SIGKILL");
        const { doc, pid } = await waitNewPid(c, "web", web0);
        const ms = Math.round(performance.now() - t0);
        console.log(`  kill -9 web (pid ${web0}) → new pid ${pid} after ${ms} ms`);
        web1 = pid;
        const web = appIn(doc, "web");
        assert.equal(web.restarts, 1);
        assert.equal(web.escalated, false);
        assert.equal(pidOf(doc, "sl"), sl0, "the other app keeps its pid");
        // "process" apps have no check loop at all: the restart can only come from the exit
        // notification of the child (waitpid), which alone knows the signal. A /proc poll
        // would report "exit status unknown".
        assert.equal(web.check, "process");
        assert.match(web.lastFailure ?? "", /killed by SIGKILL/);
        const restart = doc.events.find((e) => e.kind === "restart" && e.app === "web");
        assert.ok(restart, "expected a restart event for web");
        assert.match(restart.message, new RegExp(`pid ${web0} killed by SIGKILL`));
        await expectProcs(c, webMarker, [pid], "exactly one web process");
      });

      await t.step(
        "baton status --json prints the documented keys, as GET /v1/status",
        async () => {
          const r = await c.cli(NODE, "status", "--json");
          assert.equal(r.code, 0, r.stderr);
          const cli = JSON.parse(r.stdout) as Record<string, unknown>;
          const doc = await statusDoc(c);
          assert.ok(doc);
          assert.deepEqual(Object.keys(cli).sort(), Object.keys(doc).sort());
          for (const key of ["node", "role", "epoch", "apps", "peers"]) {
            assert.ok(key in cli, `expected key ${key} in baton status --json`);
          }
          assert.equal(cli["node"], NODE);
          assert.equal(cli["role"], "active");
          assert.equal(typeof cli["epoch"], "number");
          assert.deepEqual(cli["peers"], []);
          const apps = cli["apps"] as Record<string, unknown>[];
          assert.deepEqual(apps.map((a) => a["name"]).sort(), ["sl", "web"]);
          for (const a of apps) {
            for (const key of ["name", "state", "pid", "restarts", "movable"]) {
              assert.ok(key in a, `expected apps[].${key} in baton status --json`);
            }
          }
          const web = apps.find((a) => a["name"] === "web")!;
          assert.equal(web["pid"], web1);
          assert.equal(web["restarts"], 1);
          assert.equal(web["movable"], true);
          assert.equal(web["state"], "running");
          const human = await c.cli(NODE, "status");
          assert.equal(human.code, 0, human.stderr);
          assert.match(human.stdout, /solo/);
          assert.match(human.stdout, /web/);
        },
      );

      await t.step(
        "a second kill escalates; with no peer it keeps restarting with backoff",
        async () => {
          Deno.kill(web1, "SIGKILL");
          const { doc, pid: web2 } = await waitNewPid(c, "web", web1);
          const kinds = doc.events.filter((e) => e.app === "web").map((e) => e.kind);
          assert.ok(kinds.includes("escalation"), `expected an escalation, found ${kinds}`);
          assert.ok(kinds.includes("backoff"), `expected a backoff, found ${kinds}`);
          assert.ok(
            doc.events.some((e) => e.kind === "no_handover" && /single-node/.test(e.message)),
            "expected a no_handover event naming the single-node cluster",
          );
          assert.equal(doc.role, "active", "a lone node stays active");
          assert.equal(appIn(doc, "web").escalated, true);
          assert.ok(doc.warnings.some((w) => w.startsWith("ESCALATION: web")), `${doc.warnings}`);
          assert.equal(pidOf(doc, "sl"), sl0, "the healthy app keeps its pid");

          // Still escalated: the next failure is restarted again, after a backoff.
          Deno.kill(web2, "SIGKILL");
          const third = await waitNewPid(c, "web", web2);
          const web = appIn(third.doc, "web");
          assert.ok(
            web.totalRestarts >= 3,
            `expected ≥ 3 restarts in total, found ${web.totalRestarts}`,
          );
          assert.equal(pidOf(third.doc, "sl"), sl0, "the healthy app keeps its pid");
          const backoffs = (await eventKinds(c)).filter((e) =>
            e.app === "web" && e.kind === "backoff"
          );
          assert.ok(backoffs.length >= 2, `expected ≥ 2 backoff events, found ${backoffs.length}`);
          await expectProcs(c, webMarker, [third.pid], "exactly one web process");
          await expectProcs(c, sl.marker, [sl0], "exactly one sl process");
        },
      );

      await t.step(
        "events.jsonl has one JSON record per line: time, app, kind, message",
        async () => {
          const text = await Deno.readTextFile(`${c.stateDir(NODE)}/events.jsonl`);
          const lines = text.split("\n").filter((l) => l !== "");
          assert.ok(lines.length >= 5, `expected several records, found ${lines.length}`);
          const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
          for (const r of records) {
            assert.equal(typeof r["time"], "string");
            assert.ok(!Number.isNaN(Date.parse(r["time"] as string)), `bad time ${r["time"]}`);
            assert.ok(r["app"] === null || typeof r["app"] === "string", `bad app ${r["app"]}`);
            assert.equal(typeof r["kind"], "string");
            assert.equal(typeof r["message"], "string");
          }
          const kinds = records.map((r) => `${r["app"]}:${r["kind"]}`);
          for (const k of ["web:started", "sl:started", "web:restart", "web:escalation"]) {
            assert.ok(kinds.includes(k), `expected ${k} in events.jsonl, found ${kinds.join(" ")}`);
          }
        },
      );
    });
  },
);

// ---------------------------------------------------------------- 3

Deno.test(
  "baton run: kill -9 of the agent and a restart leave every app running, adopted, not duplicated",
  IT,
  async () => {
    const webMarker = marker("web");
    const sl = sleeper();
    const c = await soloCluster((p) =>
      [appYaml("web", sampleAppCommand(p[0]!, webMarker)), appYaml("sl", sl.command)].join("\n")
    );
    await withCluster(c, async () => {
      await c.startAgent(NODE);
      const before = await waitAllRunning(c, ["web", "sl"]);
      const pids = { web: pidOf(before, "web"), sl: pidOf(before, "sl") };
      await waitInfo(c, c.appPorts[0]!, pids.web);
      // The state file must record both before the agent dies.
      await c.waitFor("both pids in state.json", async () => {
        const rec = await c.recordedPids(NODE);
        return rec.includes(pids.web) && rec.includes(pids.sl);
      });

      await c.killAgent(NODE, "SIGKILL");
      assert.equal(await statusDoc(c), null, "the agent is gone");
      assert.ok(alive(pids.web) && alive(pids.sl), "apps survive the agent");

      const t0 = performance.now();
      await c.startAgent(NODE);
      const after = await waitAllRunning(c, ["web", "sl"]);
      console.log(
        `  agent restart → status with adopted apps after ${Math.round(performance.now() - t0)} ms`,
      );
      assert.equal(pidOf(after, "web"), pids.web);
      assert.equal(pidOf(after, "sl"), pids.sl);
      const adopted = after.events.filter((e) => e.kind === "adopted").map((e) => e.app).sort();
      assert.deepEqual(adopted, ["sl", "web"]);

      // Give a duplicate time to appear (several heartbeat intervals and ticks), then count.
      await sleep(1500);
      const later = await statusDoc(c);
      assert.ok(later);
      for (const name of ["web", "sl"] as const) {
        const a = appIn(later, name);
        assert.equal(a.pid, pids[name], `${name} keeps its pid`);
        assert.equal(a.restarts, 0, `${name} was not restarted`);
        assert.equal(a.state, "running");
      }
      await expectProcs(c, webMarker, [pids.web], "exactly one web process");
      await expectProcs(c, sl.marker, [pids.sl], "exactly one sl process");
      const events = await eventKinds(c);
      const sinceBoot = events.slice(events.map((e) => e.kind).lastIndexOf("boot"));
      assert.equal(sinceBoot[0]?.kind, "boot");
      assert.ok(!sinceBoot.some((e) => e.kind === "started"), "nothing was started again");

      // Adopted apps are still supervised: a kill -9 is noticed and restarted.
      Deno.kill(pids.sl, "SIGKILL");
      const { doc, pid } = await waitNewPid(c, "sl", pids.sl);
      assert.equal(appIn(doc, "sl").restarts, 1);
      assert.equal(pidOf(doc, "web"), pids.web);
      await expectProcs(c, sl.marker, [pid], "processes of app sl");
    });
  },
);

Deno.test(
  "baton run: an app the agent started but never recorded (it died first) is adopted, not duplicated",
  IT,
  async () => {
    const sl = sleeper();
    const c = await soloCluster(() => appYaml("sl", sl.command));
    await withCluster(c, async () => {
      await c.startAgent(NODE);
      const pid = pidOf(await waitAllRunning(c, ["sl"]), "sl");
      await c.waitFor("sl in state.json", async () => (await c.recordedPids(NODE)).includes(pid));
      await c.killAgent(NODE, "SIGKILL");
      // As if the agent died between starting the app and writing its record.
      const file = `${c.stateDir(NODE)}/state.json`;
      const state = JSON.parse(await Deno.readTextFile(file));
      state.apps = {};
      await Deno.writeTextFile(file, JSON.stringify(state));

      await c.startAgent(NODE);
      const after = await waitAllRunning(c, ["sl"]);
      assert.equal(pidOf(after, "sl"), pid, "the unrecorded process is adopted");
      assert.ok(after.events.some((e) => e.kind === "orphan_adopted" && e.app === "sl"));
      await sleep(1000);
      await expectProcs(c, sl.marker, [pid], "exactly one sl process");
      assert.equal(appIn((await statusDoc(c))!, "sl").restarts, 0);
    });
  },
);

// ---------------------------------------------------------------- 4

Deno.test(
  "baton reload and SIGHUP refuse a broken manifest with FILE:LINE:COL and stop nothing",
  IT,
  async () => {
    const webMarker = marker("web");
    const sl = sleeper();
    const good = (p: number[]) =>
      [appYaml("web", sampleAppCommand(p[0]!, webMarker)), appYaml("sl", sl.command)].join("\n");
    const c = await soloCluster(good);
    await withCluster(c, async () => {
      await c.startAgent(NODE);
      const before = await waitAllRunning(c, ["web", "sl"]);
      const pids = { web: pidOf(before, "web"), sl: pidOf(before, "sl") };

      // A string where a command list belongs: an error at a known line.
      await c.writeManifest(
        [good(c.appPorts), "  broken:", '    command: "sleep infinity"', "    movable: maybe"].join(
          "\n",
        ),
      );
      const text = await Deno.readTextFile(c.manifest);
      const badLine = text.split("\n").findIndex((l) => l.includes('"sleep infinity"')) + 1;
      const where = new RegExp(`${c.manifest.replaceAll(".", "\\.")}:${badLine}:\\d+: `);

      const r = await c.cli(NODE, "reload");
      assert.notEqual(r.code, 0, "baton reload must fail");
      assert.match(r.stdout + r.stderr, where);
      assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace expected:\n${r.stderr}`);

      // The agent side: a signed POST /v1/reload (what the CLI would send) is refused too.
      const secret = (await Deno.readTextFile(`${c.dir}/baton.secret`)).trim();
      const client = new PeerClient({ node: NODE, secret, timeoutMs: 10_000 });
      try {
        await assert.rejects(
          client.post(c.url(NODE), "/v1/reload", {}),
          (err: unknown) => {
            assert.ok(err instanceof PeerError);
            assert.equal(err.status, 422);
            assert.match(err.message, where);
            return true;
          },
        );
      } finally {
        client.close();
      }

      const logBefore = (await logText(c)).length;
      c.agents.get(NODE)!.kill("SIGHUP");
      await c.waitFor("the SIGHUP refusal in the agent log", async () => {
        const log = (await logText(c)).slice(logBefore);
        return /reload refused/.test(log) && where.test(log);
      });

      const doc = await c.waitFor("refusals recorded", async () => {
        const d = await statusDoc(c);
        return d && d.events.filter((e) => e.kind === "reload_refused").length >= 2 ? d : null;
      });
      assert.equal(doc.manifestHash, before.manifestHash, "the last good manifest stays");
      assert.equal(pidOf(doc, "web"), pids.web);
      assert.equal(pidOf(doc, "sl"), pids.sl);
      assert.ok(!doc.apps.some((a) => a.name === "broken"));
      assert.ok(alive(pids.web) && alive(pids.sl));
      await expectProcs(c, webMarker, [pids.web], "processes of app web");
      await expectProcs(c, sl.marker, [pids.sl], "processes of app sl");
      const exited = await Promise.race([
        c.agents.get(NODE)!.status.then(() => true),
        sleep(300).then(() => false),
      ]);
      assert.equal(exited, false, "the agent is still running");
    });
  },
);

// ---------------------------------------------------------------- 5

Deno.test(
  "baton reload starts added apps, stops removed ones, restarts changed ones, keeps the rest",
  IT,
  async () => {
    const [keep, gone, change, changed, added] = [
      sleeper(),
      sleeper(),
      sleeper(),
      sleeper(),
      sleeper(),
    ];
    const c = await soloCluster(() =>
      [
        appYaml("keep", keep.command),
        appYaml("gone", gone.command),
        appYaml("change", change.command),
      ].join("\n")
    );
    await withCluster(c, async () => {
      await c.startAgent(NODE);
      const before = await waitAllRunning(c, ["keep", "gone", "change"]);
      const pids = {
        keep: pidOf(before, "keep"),
        gone: pidOf(before, "gone"),
        change: pidOf(before, "change"),
      };

      await c.writeManifest(
        [
          appYaml("keep", keep.command),
          appYaml("change", changed.command),
          appYaml("added", added.command),
        ].join("\n"),
      );
      const r = await c.cli(NODE, "reload");
      assert.equal(r.code, 0, `baton reload failed:\n${r.stdout}${r.stderr}`);
      const hash = /reloaded: manifest (\w+)/.exec(r.stdout)?.[1];
      assert.ok(hash, `expected "reloaded: manifest <hash>", found ${r.stdout}`);

      const doc = await c.waitFor("the reload applied", async () => {
        const d = await statusDoc(c);
        if (!d || d.manifestHash !== hash) return null;
        const ch = d.apps.find((a) => a.name === "change");
        const ad = d.apps.find((a) => a.name === "added");
        return ch?.state === "running" && ch.pid !== pids.change && ad?.state === "running" &&
            !d.apps.some((a) => a.name === "gone")
          ? d
          : null;
      });
      assert.equal(pidOf(doc, "keep"), pids.keep, "an untouched app keeps its pid");
      assert.equal(appIn(doc, "keep").restarts, 0);
      assert.equal(appIn(doc, "change").restarts, 0, "a manifest change is not a failure");
      await c.waitFor(
        "old processes gone",
        () => Promise.resolve(!alive(pids.gone) && !alive(pids.change)),
      );
      await expectProcs(c, gone.marker, [], "processes of app gone");
      await expectProcs(c, change.marker, [], "processes of app change");
      await expectProcs(c, changed.marker, [pidOf(doc, "change")], "processes of app changed");
      await expectProcs(c, added.marker, [pidOf(doc, "added")], "processes of app added");
      await expectProcs(c, keep.marker, [pids.keep], "processes of app keep");
      const reload = doc.events.find((e) => e.kind === "reload");
      assert.ok(reload, "expected a reload event");
      assert.match(reload.message, /\+added/);
      assert.match(reload.message, /-gone/);
      assert.match(reload.message, /~change/);
    });
  },
);

// ---------------------------------------------------------------- 6

Deno.test(
  "baton run: an http-checked app stopped with SIGSTOP is detected, killed and restarted",
  IT,
  async () => {
    const hungMarker = marker("hung");
    // A helper in the app's process group: a group kill must take it down too.
    const helper = sleeper();
    const command = (port: number) => [
      "sh",
      "-c",
      `${helper.command.join(" ")} & exec "$@"`,
      "sh",
      ...sampleAppCommand(port, hungMarker),
    ];
    const c = await soloCluster((p) =>
      appYaml("hung", command(p[0]!), [
        "check:",
        "  type: http",
        `  url: http://127.0.0.1:${p[0]}/health`,
        "  interval: 300ms",
        "  timeout: 500ms",
        "  failures: 3",
        "  initialDelay: 5s",
        "stop: { signal: SIGTERM, timeout: 1s }",
      ])
    );
    await withCluster(c, async () => {
      await c.startAgent(NODE);
      const first = await waitAllRunning(c, ["hung"]);
      const pid0 = pidOf(first, "hung");
      await waitInfo(c, c.appPorts[0]!, pid0);
      await c.waitFor("a passing check", async () => {
        const d = await statusDoc(c);
        const a = d?.apps.find((x) => x.name === "hung");
        return a?.pid === pid0 && a.lastCheck?.ok === true;
      }, 30_000);
      const [helper0] = pidsWithArg(helper.marker);
      assert.ok(helper0 !== undefined, "the helper runs");
      assert.equal(readProcStat(helper0)?.pgid, pid0, "the helper is in the app's group");

      const t0 = performance.now();
      Deno.kill(pid0, "SIGSTOP");
      const { doc, pid } = await waitNewPid(c, "hung", pid0, 30_000);
      console.log(
        `  SIGSTOP hung (pid ${pid0}) → new pid ${pid} after ${
          Math.round(performance.now() - t0)
        } ms (3 checks of 500 ms timeout + 1 s stop timeout)`,
      );
      const a = appIn(doc, "hung");
      assert.equal(a.restarts, 1);
      assert.match(a.lastFailure ?? "", /http check failed 3 time\(s\) in a row/);
      await c.waitFor(`old pid ${pid0} gone (or a zombie)`, () => Promise.resolve(!alive(pid0)));
      await expectProcs(c, hungMarker, [pid], "processes of app hung");
      await c.waitFor(`old helper ${helper0} gone`, () => Promise.resolve(!alive(helper0)));
      const helpers = pidsWithArg(helper.marker);
      assert.equal(helpers.length, 1, `one helper, of the new process: ${helpers}`);
      assert.equal(readProcStat(helpers[0]!)?.pgid, pid);
      const info = await waitInfo(c, c.appPorts[0]!, pid);
      assert.equal(info.pid, pid, "the new process serves the port");
    });
  },
);

// ---------------------------------------------------------------- 7

Deno.test(
  "baton reload: an app that ignores SIGTERM is SIGKILLed after its stop timeout when removed",
  IT,
  async () => {
    const stubbornMarker = marker("stubborn");
    const keep = sleeper();
    const stubborn = (p: number[]) =>
      appYaml("stubborn", sampleAppCommand(p[0]!, stubbornMarker, "--ignore-sigterm"), [
        "stop: { signal: SIGTERM, timeout: 1s }",
      ]);
    const c = await soloCluster((p) => [appYaml("keep", keep.command), stubborn(p)].join("\n"));
    await withCluster(c, async () => {
      await c.startAgent(NODE);
      const before = await waitAllRunning(c, ["keep", "stubborn"]);
      const pid = pidOf(before, "stubborn");
      const keepPid = pidOf(before, "keep");
      // Answering /info means its SIGTERM handler is installed.
      await waitInfo(c, c.appPorts[0]!, pid);

      await c.writeManifest(appYaml("keep", keep.command));
      const t0 = performance.now();
      const r = await c.cli(NODE, "reload");
      assert.equal(r.code, 0, r.stderr);
      await c.waitFor(`stubborn pid ${pid} gone`, () => Promise.resolve(!alive(pid)), 20_000);
      console.log(
        `  reload removing stubborn → pid ${pid} gone after ${
          Math.round(performance.now() - t0)
        } ms (stop timeout 1 s)`,
      );
      const appLog = await Deno.readTextFile(`${c.stateDir(NODE)}/logs/stubborn.log`);
      assert.match(appLog, /ignoring SIGTERM/, "SIGTERM came first and was ignored");
      const doc = await c.waitFor("stubborn removed from status", async () => {
        const d = await statusDoc(c);
        return d && !d.apps.some((a) => a.name === "stubborn") ? d : null;
      });
      assert.equal(pidOf(doc, "keep"), keepPid);
      await expectProcs(c, stubbornMarker, [], "processes of app stubborn");
      const stopped = doc.events.find((e) => e.kind === "stopped" && e.app === "stubborn");
      assert.ok(stopped, "expected a stopped event for stubborn");
    });
  },
);

// ---------------------------------------------------------------- 10

Deno.test(
  "baton run refuses to start on a garbage state.json, exits non-zero and starts nothing",
  IT,
  async () => {
    const sl = sleeper();
    const c = await soloCluster(() => appYaml("sl", sl.command));
    await withCluster(c, async () => {
      await Deno.mkdir(c.stateDir(NODE), { recursive: true });
      await Deno.writeTextFile(`${c.stateDir(NODE)}/state.json`, '{"version": 1, "node": "so');
      await c.startAgent(NODE);
      const child = c.agents.get(NODE)!;
      const status = await Promise.race([
        child.status,
        sleep(30_000).then(() => null),
      ]);
      assert.ok(status, "the agent should have exited");
      assert.notEqual(status.code, 0);
      const log = await c.waitFor("the error in the agent log", async () => {
        const l = await logText(c);
        return /state\.json/.test(l) ? l : null;
      });
      assert.match(log, /expected a JSON object written by baton, found invalid JSON/);
      assert.match(log, /will not guess/);
      assert.ok(!/\n\s+at /.test(log), `no stack trace expected:\n${log}`);
      await expectProcs(c, sl.marker, [], "no app was started");
      assert.equal(
        await Deno.readTextFile(`${c.stateDir(NODE)}/state.json`),
        '{"version": 1, "node": "so',
        "the state file is left for the operator",
      );
      c.agents.delete(NODE);
    });
  },
);
