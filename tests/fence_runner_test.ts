/**
 * The fence runner (src/agent/fence_runner.ts) with real processes: substitution, redaction of
 * the first line, the 0600 output file, the timeout that SIGKILLs the command's whole process
 * group, and a missing credentials file.
 */
import assert from "node:assert/strict";
import {
  fenceArgv,
  fencePeer,
  redactFirstLine,
  runFenceCommand,
} from "../src/agent/fence_runner.ts";
import { alive } from "../scripts/local_cluster.ts";

Deno.test("fenceArgv substitutes {node}, {url} and {credentials}", () => {
  assert.deepEqual(
    fenceArgv({
      name: "alpha",
      url: "http://10.0.0.1:7401",
      priority: 1,
      fence: ["ipmi", "-H", "bmc-{node}", "-f", "{credentials}", "--note={url}"],
      fenceCredentials: "/etc/baton/a.pass",
    }),
    ["ipmi", "-H", "bmc-alpha", "-f", "/etc/baton/a.pass", "--note=http://10.0.0.1:7401"],
  );
});

Deno.test("redactFirstLine: first non-empty line, secrets and password=… values replaced, bounded", () => {
  assert.equal(
    redactFirstLine("\n  login admin:s3cr3t failed password: hunter2 token=abc\nmore", ["s3cr3t"]),
    "login admin:*** failed password: *** token=***",
  );
  assert.equal(redactFirstLine("a\u0007b", []), "a b");
  assert.equal(redactFirstLine("x".repeat(500), []).length, 120);
  assert.equal(redactFirstLine("", []), "");
});

Deno.test("runFenceCommand: exit 0 is success; the full output only in a 0600 file; arguments redacted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "baton-fence-" });
  try {
    const logFile = `${dir}/fence/beta.log`;
    const o = await runFenceCommand(
      ["/bin/sh", "-c", "echo connecting to bmc-beta as admin; echo line two >&2", "bmc-beta"],
      { timeoutMs: 10_000, logFile, secrets: [], label: "beta 1" },
    );
    assert.equal(o.ok, true);
    assert.equal(o.exitCode, 0);
    assert.equal(o.firstLine, "connecting to *** as admin");
    assert.equal((await Deno.stat(logFile)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/fence`)).mode! & 0o777, 0o700);
    const text = await Deno.readTextFile(logFile);
    assert.match(text, /bmc-beta as admin/);
    assert.match(text, /line two/);
    assert.match(text, /beta 1: exit 0/);
    const bad = await runFenceCommand(["/bin/sh", "-c", "exit 4"], {
      timeoutMs: 10_000,
      logFile,
      secrets: [],
      label: "beta 2",
    });
    assert.deepEqual([bad.ok, bad.exitCode], [false, 4]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runFenceCommand: on timeout the whole process group is SIGKILLed and the attempt fails", async () => {
  const dir = await Deno.makeTempDir({ prefix: "baton-fence-" });
  try {
    const o = await runFenceCommand(
      ["/bin/sh", "-c", `sleep 60 & echo $! > ${dir}/child; echo started; wait`],
      { timeoutMs: 500, logFile: `${dir}/f.log`, secrets: [], label: "t" },
    );
    assert.equal(o.ok, false);
    assert.equal(o.exitCode, null);
    assert.match(o.firstLine, /timed out after 500 ms: process group killed/);
    const child = Number((await Deno.readTextFile(`${dir}/child`)).trim());
    const end = Date.now() + 5_000;
    while (alive(child) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(child), false, "the command's child died with its group");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fencePeer: a missing credentials file fails without running anything; the node name is no secret", async () => {
  const dir = await Deno.makeTempDir({ prefix: "baton-fence-" });
  try {
    const node = {
      name: "alpha",
      url: "http://127.0.0.1:1",
      priority: 0,
      fence: ["/bin/sh", "-c", `touch ${dir}/ran; echo powered off "$0"`, "{node}"],
    };
    const missing = await fencePeer(
      { ...node, fenceCredentials: `${dir}/nope.pass` },
      5_000,
      dir,
      1,
    );
    assert.equal(missing.ok, false);
    assert.match(missing.firstLine, /credentials file not readable \(NotFound\)/);
    assert.equal(await Deno.stat(`${dir}/ran`).then(() => true, () => false), false);
    await Deno.writeTextFile(`${dir}/ok.pass`, "hunter2\n", { mode: 0o600 });
    const ok = await fencePeer({ ...node, fenceCredentials: `${dir}/ok.pass` }, 5_000, dir, 2);
    assert.equal(ok.ok, true);
    assert.equal(ok.firstLine, "powered off alpha");
    assert.match(await Deno.readTextFile(`${dir}/fence/alpha.log`), /fence of alpha, attempt 2/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
