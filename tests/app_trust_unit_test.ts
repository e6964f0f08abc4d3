/**
 * The pieces of issue 11 findings 4 and 5 one by one: `user:`/`group:`/`inheritEnv:` in the
 * manifest (line and column of every error), the clean app environment, the privilege drop,
 * the spawn ledger, and the real runner and orphan scan that use them (real processes).
 */
import assert from "node:assert/strict";
import { formatDiagnostic, parseManifest } from "../src/manifest/load.ts";
import { parseUserDb, resolveRunAs } from "../src/manifest/app_user.ts";
import { appEnvironment } from "../src/supervisor/app_env.ts";
import { privilegePrefix } from "../src/supervisor/drop_privileges.ts";
import { LedgerSnapshot, processUid, SpawnLedger } from "../src/supervisor/spawn_token.ts";
import { RealProcessRunner } from "../src/supervisor/real_runner.ts";
import { findAppProcesses } from "../src/supervisor/orphans.ts";
import { readProcStat } from "../src/supervisor/proc.ts";

const ROOT = Deno.uid() === 0;
const ONE_NODE = "nodes:\n  alpha: { url: http://127.0.0.1:7401 }\n";

async function diagnostics(apps: string[]): Promise<string[]> {
  const text = ONE_NODE + "apps:\n" + apps.join("\n") + "\n";
  const r = await parseManifest(text, "m.yaml");
  return r.ok ? [] : r.errors.map(formatDiagnostic);
}

Deno.test("manifest: user and group resolve to ids, by name or number", async () => {
  const text = ONE_NODE + [
    "apps:",
    "  a: { command: [x], user: nobody }",
    "  b: { command: [x], user: 65534, group: 0 }",
    "  c: { command: [x], user: root, group: nogroup }",
    "  d: { command: [x], user: '4000', group: 4000, inheritEnv: [JAVA_HOME] }",
    "  e: { command: [x] }",
  ].join("\n") + "\n";
  const r = await parseManifest(text, "m.yaml");
  assert.ok(r.ok, r.ok ? "" : r.errors.map(formatDiagnostic).join("\n"));
  const apps = r.manifest.apps;
  assert.deepEqual(apps["a"]!.runAs, {
    uid: 65534,
    gid: 65534,
    name: "nobody",
    home: "/nonexistent",
  });
  assert.deepEqual(apps["b"]!.runAs, { uid: 65534, gid: 0, name: "nobody", home: "/nonexistent" });
  assert.deepEqual(apps["c"]!.runAs, { uid: 0, gid: 65534, name: "root", home: "/root" });
  assert.deepEqual(apps["d"]!.runAs, { uid: 4000, gid: 4000, name: "4000", home: "/" });
  assert.deepEqual(apps["d"]!.inheritEnv, ["JAVA_HOME"]);
  assert.equal("runAs" in apps["e"]!, false, "no user: the agent's");
  assert.equal("inheritEnv" in apps["e"]!, false);
  // The user is part of what restarts an app when it changes.
  const same = await parseManifest(text.replace("user: nobody }", "user: root }"), "m.yaml");
  assert.ok(same.ok);
  assert.notEqual(same.manifest.apps["a"]!.hash, apps["a"]!.hash);
  assert.equal(same.manifest.apps["e"]!.hash, apps["e"]!.hash);
});

Deno.test("manifest: an unknown user or group is an error at its line and column", async () => {
  const errs = await diagnostics([
    "  a:",
    "    command: [x]",
    "    user: no-such-user-here",
    "  b:",
    "    command: [x]",
    "    user: nobody",
    "    group: no-such-group-here",
    "  c:",
    "    command: [x]",
    "    group: nogroup",
    "  d:",
    "    command: [x]",
    "    user: 4000",
  ]);
  assert.deepEqual(errs, [
    'm.yaml:6:11: unknown user "no-such-user-here": expected a user of /etc/passwd or ' +
    "a numeric uid",
    'm.yaml:10:12: unknown group "no-such-group-here": expected a group of /etc/group ' +
    "or a numeric gid",
    "m.yaml:13:12: group: needs user: too (the app would otherwise run as the agent's " +
    "user)",
    "m.yaml:16:11: uid 4000 has no entry in /etc/passwd, so no primary group: expected " +
    "group: too",
  ]);
});

Deno.test("manifest: inheritEnv never passes the secret, and takes only variable names", async () => {
  const errs = await diagnostics([
    "  a:",
    "    command: [x]",
    "    inheritEnv: [JAVA_HOME, BATON_SECRET, CREDENTIALS_DIRECTORY, 'NOT A NAME']",
    "    user: -1",
  ]);
  assert.equal(errs.length, 4, errs.join("\n"));
  const row = "    inheritEnv: [JAVA_HOME, BATON_SECRET, CREDENTIALS_DIRECTORY, 'NOT A NAME']";
  const col = (needle: string) => row.indexOf(needle) + 1;
  assert.match(errs[0]!, new RegExp(`^m\\.yaml:6:${col("BATON_SECRET")}: .*never passed to apps`));
  assert.match(errs[1]!, new RegExp(`^m\\.yaml:6:${col("CREDENTIALS")}: .*never passed to apps`));
  assert.match(errs[2]!, new RegExp(`^m\\.yaml:6:${col("'NOT")}: expected a variable name`));
  assert.match(errs[3]!, /^m\.yaml:7:11: expected at least 0, found the number -1/);
});

Deno.test("resolveRunAs and parseUserDb: names from the files, numbers as they are", () => {
  const db = parseUserDb(
    "web:x:1001:1002:Web:/srv/web:/bin/sh\nbroken line\n",
    "webgrp:x:1002:\nstaff:x:50:\n",
  );
  assert.deepEqual(resolveRunAs("web", undefined, db), {
    ok: true,
    runAs: { uid: 1001, gid: 1002, name: "web", home: "/srv/web" },
  });
  assert.deepEqual(resolveRunAs(1001, "staff", db), {
    ok: true,
    runAs: { uid: 1001, gid: 50, name: "web", home: "/srv/web" },
  });
  assert.equal(resolveRunAs("nope", undefined, db).ok, false);
});

Deno.test("appEnvironment: the allowlist, the user, inheritEnv, env and never the secret", () => {
  const env = appEnvironment({
    agentEnv: {
      PATH: "/usr/bin",
      LANG: "C.UTF-8",
      LC_TIME: "de_DE",
      TZ: "UTC",
      HOME: "/root",
      BATON_SECRET: "s",
      CREDENTIALS_DIRECTORY: "/run/credentials/baton.service",
      NOTIFY_SOCKET: "/run/systemd/notify",
      SSH_AUTH_SOCK: "/tmp/agent",
      JAVA_HOME: "/opt/jdk",
      BATON_STATE_DIR: "/var/lib/baton",
    },
    inherit: ["JAVA_HOME", "BATON_SECRET", "MISSING"],
    user: { name: "web", home: "/srv/web" },
    env: { PORT: "80", BATON_APP: "web", CREDENTIALS_DIRECTORY: "/x" },
  });
  assert.deepEqual(env, {
    PATH: "/usr/bin",
    LANG: "C.UTF-8",
    LC_TIME: "de_DE",
    TZ: "UTC",
    JAVA_HOME: "/opt/jdk",
    HOME: "/srv/web",
    USER: "web",
    LOGNAME: "web",
    PORT: "80",
    BATON_APP: "web",
  });
});

Deno.test("privilegePrefix: setpriv with cleared groups, or a clear error", () => {
  const nobody = { uid: 65534, gid: 65534, name: "nobody", home: "/nonexistent" };
  assert.deepEqual(privilegePrefix(nobody, 0, "/usr/bin/setpriv"), [
    "/usr/bin/setpriv",
    "--reuid",
    "65534",
    "--regid",
    "65534",
    "--clear-groups",
    "--",
  ]);
  assert.deepEqual(privilegePrefix(undefined, 0, null), []);
  assert.throws(() => privilegePrefix(nobody, 0, null), /needs util-linux setpriv/);
  assert.throws(() => privilegePrefix(nobody, 1000), /expected the agent to run as root/);
});

Deno.test("LedgerSnapshot.proves: token, owner and, once recorded, the very PID", () => {
  const token = "a".repeat(32);
  const snap = (pid: number | null) =>
    new LedgerSnapshot(
      new Map([["web", [{ token, uid: 65534, pid, startTime: pid === null ? null : 77 }]]]),
    );
  const p = { pid: 10, startTime: 77, uid: 65534, token };
  assert.equal(snap(null).proves("web", p), true, "token and owner, PID not recorded yet");
  assert.equal(snap(10).proves("web", p), true);
  assert.equal(snap(11).proves("web", p), false, "a copy of the token in another process");
  assert.equal(snap(10).proves("web", { ...p, startTime: 78 }), false, "a reused PID");
  assert.equal(snap(null).proves("web", { ...p, uid: 0 }), false, "another owner");
  assert.equal(snap(null).proves("web", { ...p, token: "b".repeat(32) }), false);
  assert.equal(snap(null).proves("web", { ...p, token: undefined }), false);
  assert.equal(snap(null).proves("api", p), false, "another app's token");
});

Deno.test({
  name: "RealProcessRunner: a clean environment, the spawn token recorded before and after, " +
    "user: nobody through setpriv, and only a proven process found after a restart",
  ignore: !ROOT,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "baton-trust-unit-" });
    const ledger = new SpawnLedger(`${dir}/spawns`);
    const runner = new RealProcessRunner({ spawnLedger: ledger });
    const pids: number[] = [];
    Deno.env.set("TRUST_UNIT_CANARY", "leak");
    try {
      const env = { BATON_APP: "web", BATON_NODE: "alpha", BATON_CLUSTER: "c1" };
      const a = await runner.spawn({
        app: "web",
        command: ["sleep", "30"],
        cwd: "/",
        env,
        logDir: `${dir}/logs`,
        runAs: { uid: 65534, gid: 65534, name: "nobody", home: "/nonexistent" },
      });
      pids.push(a.pid);
      // Until the launcher's last exec (setsid, setpriv, then the app) is done.
      for (let i = 0; i < 500; i++) {
        const argv = Deno.readTextFileSync(`/proc/${a.pid}/cmdline`).split("\0");
        if (argv[0] === "sleep") break;
        await new Promise((r) => setTimeout(r, 5));
      }
      const environ = Deno.readTextFileSync(`/proc/${a.pid}/environ`);
      assert.ok(!environ.includes("TRUST_UNIT_CANARY"), "the agent's environment leaked");
      assert.match(environ, /BATON_SPAWN_TOKEN=[0-9a-f]{32}/);
      assert.equal(processUid(a.pid), 65534);
      const status = Deno.readTextFileSync(`/proc/${a.pid}/status`);
      assert.match(status, /^Groups:\s*$/m, "supplementary groups cleared");
      const recorded = ledger.snapshot().entries.get("web")!;
      assert.deepEqual(recorded.map((e) => [e.uid, e.pid, e.startTime]), [
        [65534, a.pid, a.startTime],
      ]);
      assert.equal((await Deno.stat(`${dir}/spawns`)).mode! & 0o777, 0o700);
      assert.equal((await Deno.stat(`${dir}/spawns/web.json`)).mode! & 0o777, 0o600);

      // An impostor: same variables and a made-up token, as root, leading its own group.
      const fake = new Deno.Command("/usr/bin/setsid", {
        args: ["sleep", "30"],
        env: { ...env, BATON_SPAWN_TOKEN: "f".repeat(32) },
        clearEnv: true,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      pids.push(fake.pid);
      for (let i = 0; i < 500 && readProcStat(fake.pid)?.pgid !== fake.pid; i++) {
        await new Promise((r) => setTimeout(r, 5));
      }
      const found = findAppProcesses("c1", "alpha", null, ledger.snapshot());
      assert.deepEqual(found, [{ app: "web", pid: a.pid, startTime: a.startTime }]);
      assert.deepEqual(findAppProcesses("c1", "alpha", null, null), [], "no ledger, no proof");

      // A stop with another start time than the recorded one signals nothing.
      await runner.stop("fake", fake.pid, {
        signal: "SIGTERM",
        timeoutMs: 100,
        mode: "kill",
        startTime: (readProcStat(fake.pid)?.startTime ?? 0) + 1,
      });
      assert.equal(readProcStat(fake.pid)?.state !== "Z", true, "the mismatched PID lives");
      fake.kill("SIGKILL");
      await fake.status;
    } finally {
      Deno.env.delete("TRUST_UNIT_CANARY");
      runner.detachAll();
      for (const pid of pids) {
        try {
          Deno.kill(-pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
