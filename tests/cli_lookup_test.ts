/**
 * The CLI's manifest lookup as an installed host meets it: with no `./baton.yaml`, every
 * command reads the installed manifest (`/etc/baton/baton.yaml`, moved for the test with
 * `BATON_SYSTEM_MANIFEST`); `./baton.yaml` wins when present; `baton init` writes a one-node
 * manifest named after the host, `--cluster` the two-node example.
 */
import assert from "node:assert/strict";
import { freePort } from "../scripts/local_cluster.ts";
import { runBaton } from "./helpers/cli_run.ts";
import { nodeNameForHost } from "../src/manifest/example.ts";

async function withDirs(body: (cwd: string, etc: string) => Promise<void>): Promise<void> {
  const cwd = await Deno.makeTempDir({ prefix: "baton-lookup-cwd-" });
  const etc = await Deno.makeTempDir({ prefix: "baton-lookup-etc-" });
  try {
    await body(cwd, etc);
  } finally {
    await Deno.remove(cwd, { recursive: true }).catch(() => {});
    await Deno.remove(etc, { recursive: true }).catch(() => {});
  }
}

async function writeManifest(dir: string, node: string): Promise<string> {
  await Deno.writeTextFile(`${dir}/baton.secret`, "lookup-test-secret-0123456789abcdef\n", {
    mode: 0o600,
  });
  const path = `${dir}/baton.yaml`;
  await Deno.writeTextFile(
    path,
    [
      "cluster: { name: lookup, secretFile: ./baton.secret }",
      "nodes:",
      `  ${node}: { url: "http://127.0.0.1:${freePort()}" }`,
      "apps:",
      "  sl: { command: [sleep, infinity] }",
      "",
    ].join("\n"),
  );
  return path;
}

Deno.test("CLI reads the installed manifest when ./baton.yaml is absent (validate, status, reload)", async () => {
  await withDirs(async (cwd, etc) => {
    const system = await writeManifest(etc, "installed");
    const env = { BATON_SYSTEM_MANIFEST: system };
    const v = await runBaton(["validate", "--offline"], { cwd, env });
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.ok(v.stdout.includes(`${system}: ok`), v.stdout);
    for (const cmd of [["status"], ["reload"]]) {
      const r = await runBaton(cmd, { cwd, env });
      assert.notEqual(r.code, 0, "no agent runs");
      assert.match(r.stderr, /is the agent of node "installed" running/, `${cmd}: ${r.stderr}`);
    }
    // ./baton.yaml wins over the installed one.
    await writeManifest(cwd, "local");
    const local = await runBaton(["status"], { cwd, env });
    assert.match(local.stderr, /node "local"/);
    // Neither: the error names ./baton.yaml.
    await Deno.remove(`${etc}/baton.yaml`);
    const missing = await runBaton(["validate"], {
      cwd: etc,
      env: { BATON_SYSTEM_MANIFEST: "/x/y" },
    });
    assert.equal(missing.code, 1);
    assert.match(missing.stdout + missing.stderr, /baton\.yaml/);
  });
});

Deno.test("baton init writes a one-node manifest named after the host; --cluster the two-node example", async () => {
  await withDirs(async (cwd) => {
    const r = await runBaton(["init"], { cwd });
    assert.equal(r.code, 0, r.stderr);
    const node = nodeNameForHost(Deno.hostname());
    assert.match(r.stdout, new RegExp(`one node, "${node}"`));
    const text = await Deno.readTextFile(`${cwd}/baton.yaml`);
    assert.match(text, new RegExp(`^  ${node}: \\{ url: http://127\\.0\\.0\\.1:7401`, "m"));
    const v = await runBaton(["validate", "--offline"], { cwd });
    assert.equal(v.code, 0, v.stdout);
    assert.match(v.stdout, /1 node\(s\)/);
    assert.doesNotMatch(v.stdout, /warning/);
    const c = await runBaton(["init", "--cluster", "--force"], { cwd });
    assert.equal(c.code, 0, c.stderr);
    const v2 = await runBaton(["validate", "--offline"], { cwd });
    assert.match(v2.stdout, /2 node\(s\)/);
  });
});
