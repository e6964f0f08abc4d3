/**
 * "Ask why, from the command line": `baton events` (filters, `--since`, `--follow`, `--json`,
 * from the agent's API and from a state directory), `baton explain` against a real agent after
 * a real restart, `--json` on every read command, and `baton completion bash|zsh|fish` checked
 * in the shells themselves (zsh and fish tests skip when the shell is not installed).
 */
import type { RecordKind } from "../src/core/types.ts";
import assert from "node:assert/strict";
import { LocalCluster, sampleAppCommand } from "../scripts/local_cluster.ts";
import { buildProgram } from "../src/cli.ts";
import { EventCursor, filterEvents, parseSince } from "../src/cli/events_view.ts";
import { fileSource, runEvents } from "../src/cli/events_cmd.ts";
import { completionScript } from "../src/cli/completion.ts";
import type { EventRecord } from "../src/store/event_log.ts";
import { runBaton } from "./helpers/cli_run.ts";

const IT = { sanitizeOps: false, sanitizeResources: false } as const;

function rec(
  time: string,
  app: string | null,
  kind: RecordKind,
  message: string = kind,
): EventRecord {
  return { time, node: "solo", level: "info", app, kind, message, epoch: 1 };
}

// ---------------------------------------------------------------- events (pure parts)

Deno.test("parseSince: a duration back from now, or a date and time; else says what it expected", () => {
  const now = Date.parse("2026-12-03T10:10:00Z");
  assert.deepEqual(parseSince("10m", now), { ok: true, ms: Date.parse("2026-12-03T10:00:00Z") });
  assert.deepEqual(parseSince("2026-12-03T09:00:00Z", now), {
    ok: true,
    ms: Date.parse("2026-12-03T09:00:00Z"),
  });
  const bad = parseSince("yesterday-ish", now);
  assert.ok(!bad.ok && /expected a duration back from now/.test(bad.error));
});

Deno.test("filterEvents: --app keeps the app's and the node's own records; --since drops older ones", () => {
  const all = [
    rec("2026-12-03T10:00:00.000Z", "web", "restart"),
    rec("2026-12-03T10:01:00.000Z", "api", "restart"),
    rec("2026-12-03T10:02:00.000Z", null, "handover"),
    rec("2026-12-03T10:03:00.000Z", "web", "started"),
  ];
  assert.deepEqual(filterEvents(all, { app: "web" }).map((r) => r.kind), [
    "restart",
    "handover",
    "started",
  ]);
  assert.deepEqual(
    filterEvents(all, { sinceMs: Date.parse("2026-12-03T10:01:30Z") }).map((r) => r.kind),
    ["handover", "started"],
  );
});

Deno.test("EventCursor: a re-read prints only new records, including new ones at the same time", () => {
  const c = new EventCursor();
  const a = rec("2026-12-03T10:00:00.000Z", "web", "restart");
  const b = rec("2026-12-03T10:00:00.000Z", "web", "started");
  const d = rec("2026-12-03T10:00:01.000Z", "web", "check_failed");
  assert.deepEqual(c.take([a]), [a]);
  assert.deepEqual(c.take([a, b]), [b]);
  assert.deepEqual(c.take([a, b, d]), [d]);
  assert.deepEqual(c.take([b, d]), [], "a rotated log repeats nothing");
});

Deno.test("runEvents --follow on a state directory prints the existing records, then each new one once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "baton-events-" });
  try {
    const line = (r: EventRecord) => JSON.stringify(r) + "\n";
    await Deno.writeTextFile(
      `${dir}/events.jsonl.1`,
      line(rec("2026-12-03T09:00:00.000Z", "web", "exited")),
    );
    await Deno.writeTextFile(
      `${dir}/events.jsonl`,
      line(rec("2026-12-03T10:00:00.000Z", "web", "restart")),
    );
    const got: string[] = [];
    const stop = new AbortController();
    const done = runEvents(fileSource(dir), {
      follow: true,
      json: true,
      pollMs: 20,
      signal: stop.signal,
      write: (l) => got.push(l),
    });
    while (got.length < 2) await new Promise((r) => setTimeout(r, 10));
    await Deno.writeTextFile(
      `${dir}/events.jsonl`,
      line(rec("2026-12-03T10:05:00.000Z", "web", "started")),
      { append: true },
    );
    while (got.length < 3) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100)); // a few more polls: nothing repeats
    stop.abort();
    await done;
    assert.deepEqual(got.map((l) => JSON.parse(l).kind), ["exited", "restart", "started"]);
    await assert.rejects(
      runEvents(fileSource(`${dir}/missing`), {}),
      /state directory .*missing not found/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------- against a real agent

Deno.test({
  name:
    "baton explain web after a real restart names the failure and the next step; events, --json",
  ...IT,
  fn: async () => {
    const c = await LocalCluster.create({
      nodes: [{ name: "solo", priority: 100 }],
      appPorts: 1,
      apps: ([port]) =>
        [
          "  web:",
          `    command: ${JSON.stringify(sampleAppCommand(port!, "web"))}`,
          `    check: { type: http, url: "http://127.0.0.1:${port}/health", interval: 200ms, timeout: 1s, failures: 3 }`,
          "    restart: { limit: 1, window: 10m }",
          "  worker: { command: [sleep, infinity], movable: false }",
        ].join("\n"),
    });
    try {
      await c.startAgent("solo");
      const up = await c.waitRunning("solo", ["web", "worker"], 60_000);
      const pid = up.apps.find((a) => a.name === "web")!.pid!;
      Deno.kill(pid, "SIGKILL");
      await c.waitFor("web restarted", async () => {
        const s = await c.status("solo");
        const w = s?.apps.find((a) => a.name === "web");
        return w && w.state === "running" && w.pid !== pid && w.restarts === 1;
      }, 60_000);

      const ex = await c.cli("solo", "explain", "web");
      assert.equal(ex.code, 0, ex.stdout + ex.stderr);
      assert.match(ex.stdout, /^solo is active at epoch 1/);
      assert.match(
        ex.stdout,
        /web was restarted once at \d\d:\d\d:\d\d after pid \d+ killed by SIGKILL/,
      );
      assert.match(
        ex.stdout,
        /Another failure before \d\d:\d\d:\d\d restarts it here with backoff .*since no standby can take over \(this is a single-node cluster\)/,
      );
      const exj = await c.cli("solo", "explain", "web", "--json");
      assert.equal(exj.code, 0, exj.stderr);
      const doc = JSON.parse(exj.stdout);
      assert.equal(doc.node, "solo");
      assert.deepEqual(doc.apps.map((a: { app: string }) => a.app), ["web"]);
      const none = await c.cli("solo", "explain", "nope");
      assert.equal(none.code, 1);
      assert.match(none.stderr, /no app "nope" on node solo \(apps: web, worker\)/);

      const ev = await c.cli("solo", "events", "--app", "web");
      assert.equal(ev.code, 0, ev.stderr);
      assert.match(ev.stdout, / solo warn {2}web restart: pid \d+ killed by SIGKILL/);
      assert.doesNotMatch(ev.stdout, / worker /);
      const evj = await c.cli("solo", "events", "--json", "--since", "1h");
      const kinds = evj.stdout.trim().split("\n").map((l) => JSON.parse(l).kind);
      assert.ok(kinds.includes("restart") && kinds.includes("boot"), kinds.join(","));
      const fromDir = await runBaton(["events", "--state-dir", c.stateDir("solo"), "--json"]);
      assert.equal(fromDir.code, 0, fromDir.stderr);
      assert.ok(fromDir.stdout.includes('"kind":"restart"'));

      // --follow over the API prints a new record when it happens.
      const [program, ...args] = [
        Deno.execPath(),
        "run",
        "-A",
        new URL("../main.ts", import.meta.url).pathname,
        "events",
        "--follow",
        "--json",
        "--app",
        "web",
        "-m",
        c.manifest,
      ];
      const follow = new Deno.Command(program!, { args, stdout: "piped", stderr: "null" }).spawn();
      const lines: string[] = [];
      const reader = (async () => {
        const dec = new TextDecoder();
        let buf = "";
        for await (const chunk of follow.stdout) {
          buf += dec.decode(chunk);
          const parts = buf.split("\n");
          buf = parts.pop()!;
          lines.push(...parts);
        }
      })();
      await c.waitFor(
        "the follower's first lines",
        () => Promise.resolve(lines.length > 0),
        30_000,
      );
      const s = await c.status("solo");
      const pid2 = s!.apps.find((a) => a.name === "web")!.pid!;
      Deno.kill(pid2, "SIGKILL");
      await c.waitFor(
        "the follower to print the escalation",
        () => Promise.resolve(lines.some((l) => JSON.parse(l).kind === "escalation")),
        30_000,
      );
      follow.kill("SIGTERM");
      await follow.status;
      await reader;
      const keys = lines.map((l) => l);
      assert.equal(new Set(keys).size, keys.length, "no record printed twice");

      const st = await c.cli("solo", "status", "--json");
      assert.equal(JSON.parse(st.stdout).node, "solo");
    } finally {
      await c.stop();
    }
  },
});

// ---------------------------------------------------------------- --json on the read commands

Deno.test("--json on version and validate prints one JSON document", async () => {
  const v = await runBaton(["version", "--json"]);
  assert.equal(v.code, 0);
  assert.equal(JSON.parse(v.stdout).baton, (await import("../src/version.ts")).VERSION);
  const dir = await Deno.makeTempDir({ prefix: "baton-json-" });
  try {
    await runBaton(["init"], { cwd: dir });
    const ok = await runBaton(["validate", "--json", "--offline"], { cwd: dir });
    assert.equal(ok.code, 0, ok.stderr);
    const doc = JSON.parse(ok.stdout);
    assert.equal(doc.ok, true);
    assert.deepEqual(doc.errors, []);
    await Deno.writeTextFile(`${dir}/baton.yaml`, "nodes: 3\n");
    const bad = await runBaton(["validate", "--json"], { cwd: dir });
    assert.equal(bad.code, 1);
    const badDoc = JSON.parse(bad.stdout);
    assert.equal(badDoc.ok, false);
    assert.ok(badDoc.errors.length > 0 && typeof badDoc.errors[0].line === "number");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------- completion

function has(cmd: string): boolean {
  try {
    return new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

async function sh(cmd: string, args: string[], stdin?: string): Promise<string> {
  const p = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await p.output();
  const dec = new TextDecoder();
  assert.equal(out.code, 0, `${cmd} ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout);
}

const PROGRAM = buildProgram();

Deno.test("completion scripts name every command and every long option of the definitions", () => {
  for (const shell of ["bash", "zsh", "fish"] as const) {
    const script = completionScript(PROGRAM, shell);
    for (const cmd of PROGRAM.commands) {
      assert.ok(script.includes(cmd.name()), `${shell}: command ${cmd.name()}`);
      for (const o of cmd.options) {
        const long = shell === "fish" ? `-l ${o.long!.slice(2)}` : o.long!;
        assert.ok(script.includes(long), `${shell}: ${cmd.name()} ${o.long}`);
      }
    }
  }
});

Deno.test("completion bash: completes commands, options and choices in bash itself", async () => {
  const r = await runBaton(["completion", "bash"]);
  assert.equal(r.code, 0, r.stderr);
  const complete = async (...words: string[]) => {
    const script = `${r.stdout}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); ` +
      `COMP_CWORD=${words.length - 1}; _baton_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
    return (await sh("bash", ["-c", script])).trim().split("\n").filter(Boolean).sort();
  };
  assert.deepEqual(await complete("baton", "ex"), ["explain"]);
  assert.deepEqual(await complete("baton", "maintenance", ""), ["off", "on"]);
  assert.deepEqual(await complete("baton", "run", "--mode", "a"), ["active", "auto"]);
  assert.deepEqual(await complete("baton", "completion", ""), ["bash", "fish", "zsh"]);
  assert.ok((await complete("baton", "events", "--")).includes("--follow"));
});

Deno.test({
  name: "completion fish: `complete -C` offers commands, options and choices",
  ignore: !has("fish"),
  fn: async () => {
    const script = completionScript(PROGRAM, "fish");
    const complete = async (line: string) =>
      (await sh("fish", ["-c", `${script}\ncomplete -C '${line}'`])).split("\n")
        .map((l) => l.split("\t")[0]).filter(Boolean).sort();
    assert.deepEqual(await complete("baton expl"), ["explain"]);
    assert.ok((await complete("baton events --fo")).includes("--follow"));
    assert.deepEqual(await complete("baton run --mode "), ["active", "auto", "standby"]);
  },
});

Deno.test({
  name: "completion zsh: the script parses and registers with compinit",
  ignore: !has("zsh"),
  fn: async () => {
    const script = completionScript(PROGRAM, "zsh");
    const out = await sh("zsh", [
      "-f",
      "-c",
      `autoload -U compinit && compinit -u -D; ${script}\nprint -r -- \${_comps[baton]}`,
    ]);
    assert.equal(out.trim(), "_baton");
  },
});
