/**
 * `baton validate` reports every problem of a manifest in one pass: an unknown `user:` or
 * `group:` (looked up in this host's /etc/passwd and /etc/group) comes out with the shape and
 * timing errors, even when another key of the same app is invalid.
 */
import assert from "node:assert/strict";
import { formatDiagnostic, parseManifest } from "../src/manifest/load.ts";
import { runBaton } from "./helpers/cli_run.ts";

const MANIFEST = [
  "cluster: { name: one, heartbeat: { interval: 2s, deadAfter: 1s } }",
  "nodes:",
  "  alpha: { url: http://127.0.0.1:7401 }",
  "apps:",
  "  a:",
  "    command: [sleep, infinity]",
  "    user: no-such-user-here",
  "    check: { type: tcp, host: 127.0.0.1, port: 99999 }",
  "  b:",
  "    command: [sleep, infinity]",
  "    user: nobody",
  "    group: no-such-group-here",
  "    restart: { limit: 1, window: 1x }",
  "  c:",
  "    command: [sleep, infinity]",
  "    user: nobody",
  "",
].join("\n");

Deno.test("manifest: user/group problems are reported with the app's other errors, in one pass", async () => {
  const r = await parseManifest(MANIFEST, "m.yaml");
  assert.ok(!r.ok);
  const errs = r.errors.map(formatDiagnostic);
  const at = (line: number, re: RegExp) =>
    assert.ok(
      errs.some((e) => e.startsWith(`m.yaml:${line}:`) && re.test(e)),
      `expected an error at line ${line} matching ${re}:\n${errs.join("\n")}`,
    );
  at(1, /heartbeat\.interval \(2s\) must be less than/);
  at(7, /unknown user "no-such-user-here"/);
  at(8, /expected a port in 1\.\.65535/);
  at(12, /unknown group "no-such-group-here"/);
  at(13, /expected a duration/);
  assert.equal(errs.length, 5, errs.join("\n"));
});

Deno.test("baton validate prints the unknown user with every other error, exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "baton-validate-pass-" });
  try {
    await Deno.writeTextFile(`${dir}/baton.yaml`, MANIFEST);
    const r = await runBaton(["validate"], { cwd: dir });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const out = r.stdout + r.stderr;
    assert.match(out, /baton\.yaml:7:\d+: unknown user "no-such-user-here"/);
    assert.match(out, /baton\.yaml:12:\d+: unknown group "no-such-group-here"/);
    assert.match(out, /baton\.yaml:8:\d+: expected a port/);
    assert.match(out, /invalid \(5 error\(s\)\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
