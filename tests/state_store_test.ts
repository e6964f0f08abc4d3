import assert from "node:assert/strict";
import type { PersistedState } from "../src/core/types.ts";
import { acquireLock, parseState, StateStore } from "../src/store/state_store.ts";
import { readProcStat } from "../src/supervisor/proc.ts";

function sampleState(epoch = 3): PersistedState {
  return {
    version: 1,
    node: "alpha",
    epoch,
    role: "active",
    roleSeq: 1,
    maintenance: false,
    failedReason: null,
    apps: { web: { pid: 4242, startTime: 123456, specHash: "abc123", restarts: 1 } },
  };
}

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "baton_state_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function loadError(dir: string, content: string): Promise<string> {
  await Deno.writeTextFile(`${dir}/state.json`, content);
  const result = await new StateStore(dir).load();
  assert.equal(result.ok, false, `expected load to fail for ${JSON.stringify(content)}`);
  return result.ok ? "" : result.error;
}

Deno.test("StateStore.load returns null state when there is no state file or directory", async () => {
  await withTempDir(async (dir) => {
    assert.deepEqual(await new StateStore(dir).load(), { ok: true, state: null });
    assert.deepEqual(await new StateStore(`${dir}/missing`).load(), { ok: true, state: null });
  });
});

Deno.test("StateStore.save then load returns the same state, in a 0700 dir and a 0600 file", async () => {
  await withTempDir(async (parent) => {
    const dir = `${parent}/state`;
    const store = new StateStore(dir);
    await store.save(sampleState());
    assert.deepEqual(await store.load(), { ok: true, state: sampleState() });
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(`${dir}/state.json`)).mode! & 0o777, 0o600);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(names, ["state.json"], "no temp file may be left behind");
  });
});

Deno.test("StateStore.save runs in call order: the last save wins", async () => {
  await withTempDir(async (dir) => {
    const store = new StateStore(dir);
    await Promise.all([1, 2, 3, 4, 5].map((epoch) => store.save(sampleState(epoch))));
    const result = await store.load();
    assert.ok(result.ok);
    assert.equal(result.state?.epoch, 5);
  });
});

Deno.test("StateStore.save refuses a state that is not a valid PersistedState", async () => {
  await withTempDir(async (dir) => {
    const store = new StateStore(dir);
    const bad = { ...sampleState(), epoch: -1 };
    await assert.rejects(store.save(bad), /expected a version-1 PersistedState, found epoch/);
    assert.deepEqual(await store.load(), { ok: true, state: null });
  });
});

Deno.test("StateStore.load reports garbage, an empty file and a truncated file", async () => {
  await withTempDir(async (dir) => {
    assert.match(
      await loadError(dir, "not json at all"),
      /expected a JSON object.*found invalid JSON/,
    );
    assert.match(await loadError(dir, ""), /found an empty file/);
    const full = JSON.stringify(sampleState(), null, 2);
    assert.match(await loadError(dir, full.slice(0, full.length / 2)), /found invalid JSON/);
    assert.match(await loadError(dir, "[1,2]"), /expected a JSON object, found an array/);
  });
});

Deno.test("StateStore.load reports a wrong or missing version", async () => {
  await withTempDir(async (dir) => {
    const v2 = JSON.stringify({ ...sampleState(), version: 2 });
    assert.match(await loadError(dir, v2), /expected version 1, found version 2/);
    const { version: _, ...noVersion } = sampleState();
    assert.match(await loadError(dir, JSON.stringify(noVersion)), /found no version field/);
  });
});

Deno.test("StateStore.load reports a wrong shape, naming the field", async () => {
  await withTempDir(async (dir) => {
    const badRole = JSON.stringify({ ...sampleState(), role: "leader" });
    assert.match(await loadError(dir, badRole), /expected a version-1 node state, found role:/);
    const { apps: _, ...noApps } = sampleState();
    assert.match(await loadError(dir, JSON.stringify(noApps)), /apps:/);
    const badApp = { ...sampleState(), apps: { web: { pid: "4242" } } };
    assert.match(await loadError(dir, JSON.stringify(badApp)), /apps\.web\.pid:/);
    const extra = JSON.stringify({ ...sampleState(), leader: true });
    assert.match(await loadError(dir, extra), /leader/);
  });
});

Deno.test("parseState names the source in its error", () => {
  const result = parseState("{", "/x/state.json");
  assert.ok(!result.ok);
  assert.match(result.error, /^state file \/x\/state\.json: /);
});

Deno.test("acquireLock refuses a second holder and allows it again after release", async () => {
  await withTempDir(async (parent) => {
    const dir = `${parent}/state`;
    const release = await acquireLock(dir);
    try {
      const owner = JSON.parse(await Deno.readTextFile(`${dir}/agent.pid`));
      assert.equal(owner.pid, Deno.pid);
      assert.equal(owner.startTime, readProcStat(Deno.pid)?.startTime);
      await assert.rejects(
        acquireLock(dir),
        new RegExp(`another agent \\(pid ${Deno.pid}\\) uses this state directory`),
      );
    } finally {
      release();
    }
    const again = await acquireLock(dir);
    again();
  });
});

Deno.test("acquireLock refuses while another live process holds it and succeeds once it died", async () => {
  await withTempDir(async (dir) => {
    const moduleUrl = new URL("../src/store/state_store.ts", import.meta.url).href;
    const holder = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `const { acquireLock } = await import(${JSON.stringify(moduleUrl)});
         await acquireLock(${JSON.stringify(dir)});
         console.log("locked");
         setInterval(() => {}, 1000);`,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("locked")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`lock holder ended before locking; it printed: ${text}`);
        text += value;
      }
      await reader.cancel();
      await assert.rejects(
        acquireLock(dir),
        new RegExp(`another agent \\(pid ${holder.pid}\\) uses this state directory`),
      );
    } finally {
      holder.kill("SIGKILL");
      await holder.status;
    }
    // The file still names the dead holder; the kernel dropped its lock.
    assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/agent.pid`)).pid, holder.pid);
    const release = await acquireLock(dir);
    release();
  });
});

Deno.test("acquireLock refuses when the file names another live process", async () => {
  await withTempDir(async (dir) => {
    const other = new Deno.Command("sleep", {
      args: ["30"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const stat = readProcStat(other.pid);
      assert.ok(stat !== null);
      await Deno.writeTextFile(
        `${dir}/agent.pid`,
        JSON.stringify({ pid: other.pid, startTime: stat.startTime }),
      );
      await assert.rejects(acquireLock(dir), new RegExp(`another agent \\(pid ${other.pid}\\)`));
      // A stale record (same PID, other start time) is not a live agent.
      await Deno.writeTextFile(
        `${dir}/agent.pid`,
        JSON.stringify({ pid: other.pid, startTime: stat.startTime + 1 }),
      );
      const release = await acquireLock(dir);
      release();
    } finally {
      other.kill("SIGKILL");
      await other.status;
    }
  });
});
