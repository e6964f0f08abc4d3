/**
 * Tests of the command line as a user meets it: `baton …` run as a real process through
 * `batonCommand` (the flags of the compiled binary), checking exit codes and what is printed.
 */
import assert from "node:assert/strict";
import { freePort } from "../scripts/local_cluster.ts";
import { buildProgram } from "../src/cli.ts";
import { failoverTimes, formatFailoverTimes } from "../src/manifest/failover_times.ts";
import { loadManifestFile } from "../src/manifest/load.ts";
import { VERSION } from "../src/version.ts";
import { type CliRun, runBaton } from "./helpers/cli_run.ts";
import { hostileManifests } from "./helpers/hostile_manifests.ts";

type Run = CliRun;

/** Run `baton ...args` in `cwd`; BATON_* variables of the test environment are not passed. */
function baton(args: string[], cwd?: string): Promise<Run> {
  return runBaton(args, cwd === undefined ? {} : { cwd });
}

function noStackTrace(r: Run): void {
  assert.ok(!/^\s+at .+:\d+:\d+\)?$/m.test(r.stdout + r.stderr), `stack trace:\n${r.stderr}`);
  assert.ok(!/Uncaught|error: Uncaught/.test(r.stderr), `uncaught error:\n${r.stderr}`);
}

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "baton-cli-test-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** A valid one-node manifest (and its secret) whose agent nobody runs. */
async function idleManifest(dir: string): Promise<string> {
  const path = `${dir}/baton.yaml`;
  await Deno.writeTextFile(`${dir}/baton.secret`, "cli-test-secret-0123456789abcdef\n", {
    mode: 0o600,
  });
  await Deno.writeTextFile(
    path,
    [
      "cluster: { name: clitest, secretFile: ./baton.secret }",
      "nodes:",
      `  solo: { url: "http://127.0.0.1:${freePort()}" }`,
      "apps:",
      "  sl: { command: [sleep, infinity] }",
      "",
    ].join("\n"),
  );
  return path;
}

const COMMANDS = buildProgram().commands.map((c) => c.name());

Deno.test("baton --help and every <command> --help exit 0 and print their usage", async () => {
  assert.ok(COMMANDS.length >= 10, `expected every command, found ${COMMANDS.join(", ")}`);
  for (const cmd of ["status", "reload", "run", "validate", "init", "version", "witness"]) {
    assert.ok(COMMANDS.includes(cmd), `expected command ${cmd}`);
  }
  const top = await baton(["--help"]);
  assert.equal(top.code, 0, top.stderr);
  assert.match(top.stdout, /^Usage: baton /m);
  for (const cmd of COMMANDS) assert.match(top.stdout, new RegExp(`^  ${cmd}\\b`, "m"));
  for (const cmd of COMMANDS) {
    const r = await baton([cmd, "--help"]);
    assert.equal(r.code, 0, `baton ${cmd} --help exited ${r.code}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: baton ${cmd}\\b`, "m"), `baton ${cmd} --help`);
    assert.equal(r.stderr, "", `baton ${cmd} --help wrote to stderr`);
  }
});

Deno.test("baton version prints the version and the Deno version, exit 0", async () => {
  const r = await baton(["version"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `baton ${VERSION} (deno ${Deno.version.deno})`);
  const flag = await baton(["--version"]);
  assert.equal(flag.code, 0);
  assert.equal(flag.stdout.trim(), VERSION);
});

Deno.test("baton init writes baton.yaml and a 0600 baton.secret that baton validate accepts", async () => {
  await withTempDir(async (dir) => {
    const r = await baton(["init"], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote baton\.yaml/);
    const secret = await Deno.stat(`${dir}/baton.secret`);
    assert.equal(secret.mode! & 0o777, 0o600);
    assert.ok((await Deno.readTextFile(`${dir}/baton.secret`)).trim().length >= 32);
    const v = await baton(["validate"], dir);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /baton\.yaml: ok/);

    const again = await baton(["init"], dir);
    assert.equal(again.code, 1, "init refuses to overwrite");
    assert.match(again.stderr, /baton\.yaml exists; use --force/);
    noStackTrace(again);
  });
});

Deno.test("baton validate checks the secret file as baton run will: unsafe is an error, missing a warning", async () => {
  await withTempDir(async (dir) => {
    assert.equal((await baton(["init"], dir)).code, 0);
    await Deno.chmod(`${dir}/baton.secret`, 0o644);
    const open = await baton(["validate", "--offline"], dir);
    assert.equal(open.code, 1, open.stdout + open.stderr);
    assert.match(
      open.stdout,
      /baton\.yaml:\d+:\d+: error: secret file .* readable by group or others/,
    );
    assert.match(open.stdout, /chmod 600/);
    await Deno.remove(`${dir}/baton.secret`);
    const missing = await baton(["validate", "--offline"], dir);
    assert.equal(missing.code, 0, missing.stdout + missing.stderr);
    assert.match(missing.stdout, /baton\.yaml:\d+:\d+: warning: secret file .* does not exist yet/);
    assert.match(missing.stdout, /ok — .*1 warning/);
    noStackTrace(missing);
  });
});

Deno.test("the README's baton alias (no Deno, no denort) runs baton from another folder", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const alias = /`(alias baton="npx -y deno@2\.9\.6 [^`]+")`/.exec(readme)?.[1];
  assert.ok(alias, "README shows the alias");
  const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  // As written, except that this Deno stands in for npx's (tests never fetch or call a bare deno).
  const line = alias.replace("npx -y deno@2.9.6", Deno.execPath()).replaceAll("$PWD", repo);
  await withTempDir(async (dir) => {
    const script =
      `shopt -s expand_aliases\n${line}\ncd ${dir}\nbaton init && baton validate --offline\n`;
    const env = Deno.env.toObject();
    for (const k of Object.keys(env)) if (k.startsWith("BATON_")) delete env[k];
    env.BATON_SYSTEM_MANIFEST = "/nonexistent/baton/baton.yaml";
    const r = await new Deno.Command("bash", {
      args: ["-c", script],
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, out);
    assert.match(out, /baton\.yaml: ok/);
    assert.ok((await Deno.stat(`${dir}/baton.yaml`)).isFile, "written in the caller's folder");
  });
});

Deno.test("baton validate prints FILE:LINE:COL for each problem of a bad manifest, exit 1", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/bad.yaml`;
    await Deno.writeTextFile(
      path,
      [
        "nodes:",
        '  alpha: { url: "ftp://127.0.0.1:1" }',
        "apps:",
        "  web:",
        '    command: "sleep infinity"',
        "    check: { type: htp }",
        "",
      ].join("\n"),
    );
    const r = await baton(["validate", path]);
    assert.equal(r.code, 1);
    const lines = r.stdout.split("\n").filter((l) => l.startsWith(`${path}:`));
    const where = lines.map((l) => /^[^:]+:(\d+):(\d+): /.exec(l)?.slice(1, 3).join(":"));
    assert.equal(lines.length, 3, r.stdout);
    assert.deepEqual(where.map((w) => w?.split(":")[0]), ["2", "5", "6"], r.stdout);
    assert.match(lines[0]!, /http:\/\/ or https:\/\//);
    assert.match(lines[1]!, /list/);
    assert.match(lines[2]!, /"htp"/);
    assert.match(r.stderr, /invalid \(3 error\(s\)\)/);
    noStackTrace(r);

    const missing = await baton(["validate", `${dir}/nope.yaml`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, new RegExp(`${dir}/nope\\.yaml:1:1: cannot read manifest`));
  });
});

Deno.test("baton with an unknown command exits non-zero and names the command", async () => {
  const r = await baton(["frobnicate"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
  noStackTrace(r);
  const badOpt = await baton(["status", "--no-such-flag"]);
  assert.notEqual(badOpt.code, 0);
  assert.match(badOpt.stderr, /unknown option '--no-such-flag'/);
});

Deno.test("baton status and reload with no agent running exit 1 with a readable message", async () => {
  await withTempDir(async (dir) => {
    const manifest = await idleManifest(dir);
    for (const args of [["status"], ["status", "--json"], ["reload"]]) {
      const r = await baton([...args, "-m", manifest]);
      assert.equal(r.code, 1, `baton ${args.join(" ")}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /^baton: 127\.0\.0\.1:\d+ unreachable: connection refused/);
      assert.match(r.stderr, /agent of node "solo" running/);
      assert.equal(r.stderr.trim().split("\n").length, 1, `one line expected:\n${r.stderr}`);
      noStackTrace(r);
    }
  });
});

Deno.test("baton maintenance with a wrong state exits 2 and says what it expected", async () => {
  await withTempDir(async (dir) => {
    const manifest = await idleManifest(dir);
    const r = await baton(["maintenance", "maybe", "-m", manifest]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /expected "on" or "off", got "maybe"/);
    noStackTrace(r);
  });
});

Deno.test("baton validate reports each hostile manifest at its line, exit 1, no crash", async () => {
  await withTempDir(async (dir) => {
    for (const c of hostileManifests()) {
      const path = `${dir}/hostile.yaml`;
      await Deno.writeTextFile(path, c.text);
      const r = await baton(["validate", path]);
      assert.equal(r.code, 1, `${c.name}: ${r.stderr.slice(0, 500)}`);
      const first = r.stdout.split("\n").find((l) => l.startsWith(`${path}:`)) ?? "";
      assert.equal(/^[^:]+:(\d+):/.exec(first)?.[1], String(c.line), `${c.name}: ${first}`);
      assert.match(first, c.message, c.name);
      noStackTrace(r);
    }
  });
});

Deno.test("baton validate prints the manifest's worst-case times: per app, host death, the partition gap", async () => {
  const r = await baton(["validate", "--offline", "examples/baton.yaml"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const loaded = await loadManifestFile("examples/baton.yaml");
  assert.ok(loaded.ok);
  // The lines the formulas give for this manifest (src/manifest/failover_times.ts), in order.
  const expected = formatFailoverTimes(failoverTimes(loaded.manifest));
  const printed = r.stdout.split("\n");
  const at = printed.indexOf(expected[0]!);
  assert.ok(at > 0, `expected the worst-case table after the ok line:\n${r.stdout}`);
  assert.deepEqual(printed.slice(at, at + expected.length), expected);
  assert.match(r.stdout, /host death → on the standby\s+≤ 1\.2s/);
  assert.match(r.stdout, /gap\s+250ms\s+\(no overlap\)/);
});
