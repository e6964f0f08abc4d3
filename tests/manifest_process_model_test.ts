/**
 * The manifest keys of the process model (issue 13, s3proc): `pidFile`, `limits`, `logs`:
 * normalized values, errors at their line and column, and the spec hash (a change restarts the
 * app).
 */
import assert from "node:assert/strict";
import { formatDiagnostic, parseManifest } from "../src/manifest/load.ts";

const HEAD =
  "nodes: { solo: { url: http://127.0.0.1:7401 } }\napps:\n  web:\n    command: [nginx]\n";

async function app(lines: string) {
  const r = await parseManifest(HEAD + lines, "/etc/baton/baton.yaml");
  if (!r.ok) assert.fail(r.errors.map(formatDiagnostic).join("\n"));
  return r.manifest.apps["web"]!;
}

async function errors(lines: string): Promise<string[]> {
  const r = await parseManifest(HEAD + lines, "m.yaml");
  assert.ok(!r.ok, "expected errors");
  return r.errors.map(formatDiagnostic);
}

Deno.test("pidFile, limits and logs are normalized: absolute path, bytes, defaults", async () => {
  const a = await app(
    "    pidFile: run/nginx.pid\n" +
      "    limits: { memory: 64M, cpu: 200, tasks: 64, openFiles: 1024 }\n" +
      "    logs: { maxSize: 512K }\n",
  );
  assert.equal(a.pidFile, "/etc/baton/run/nginx.pid");
  assert.deepEqual(a.limits, {
    memoryBytes: 64 * 2 ** 20,
    cpuWeight: 200,
    tasks: 64,
    openFiles: 1024,
  });
  assert.deepEqual(a.logs, { maxBytes: 512 * 1024, keep: 5 });
  assert.deepEqual((await app("    limits: { memory: 1GiB }\n")).limits, { memoryBytes: 2 ** 30 });
  assert.deepEqual((await app("    limits: { memory: 4096 }\n")).limits, { memoryBytes: 4096 });
  assert.deepEqual((await app("    logs: {}\n")).logs, { maxBytes: 10 * 2 ** 20, keep: 5 });
  const plain = await app("");
  assert.equal(plain.pidFile, undefined);
  assert.equal(plain.limits, undefined);
  assert.equal(plain.logs, undefined);
});

Deno.test("a bad size, weight or count is an error at its line and column", async () => {
  assert.match(
    (await errors("    limits: { memory: 64X }\n")).join("\n"),
    /m\.yaml:5:\d+: .*expected a size greater than zero such as "64M", found "64X"/,
  );
  assert.match(
    (await errors("    limits: { cpu: 0 }\n")).join("\n"),
    /m\.yaml:5:\d+: .*at least 1/,
  );
  assert.match(
    (await errors("    limits: { cpu: 20000 }\n")).join("\n"),
    /m\.yaml:5:\d+: .*at most 10000/,
  );
  assert.match(
    (await errors("    limits: { memroy: 64M }\n")).join("\n"),
    /m\.yaml:5:\d+: .*memroy/,
  );
  assert.match((await errors("    logs: { keep: 0 }\n")).join("\n"), /m\.yaml:5:\d+: .*at least 1/);
  assert.match((await errors('    pidFile: ""\n')).join("\n"), /m\.yaml:5:\d+: .*pid file path/);
});

Deno.test("changing pidFile, limits or logs changes the app's hash (the app is restarted)", async () => {
  const base = (await app("")).hash;
  const hashes = [
    (await app("    pidFile: /run/x.pid\n")).hash,
    (await app("    limits: { memory: 64M }\n")).hash,
    (await app("    limits: { memory: 128M }\n")).hash,
    (await app("    logs: { maxSize: 1M }\n")).hash,
  ];
  assert.equal(new Set([base, ...hashes]).size, 5);
  assert.equal((await app("")).hash, base, "an app without them keeps its hash");
});
