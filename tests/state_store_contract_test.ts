/**
 * One contract for the state store on disk (`StateStore`) and its in-memory twin
 * (`MemoryStateStore`, used by the simulation).
 */
import assert from "node:assert/strict";
import type { PersistedState } from "../src/core/types.ts";
import { MemoryStateStore, newMemoryDisk } from "../src/store/memory_store.ts";
import { type StateStorage, StateStore } from "../src/store/state_store.ts";

interface Place {
  /** A store over the same directory (a restarted agent's). */
  open(): StateStorage;
  cleanup(): Promise<void>;
}

const places: Record<string, () => Promise<Place>> = {
  disk: async () => {
    const dir = await Deno.makeTempDir({ prefix: "baton-store-contract-" });
    return {
      open: () => new StateStore(dir),
      cleanup: () => Deno.remove(dir, { recursive: true }),
    };
  },
  memory: () => {
    const disk = newMemoryDisk();
    return Promise.resolve({ open: () => new MemoryStateStore(disk), cleanup: async () => {} });
  },
};

function state(epoch: number, role: PersistedState["role"] = "active"): PersistedState {
  return {
    version: 1,
    node: "alpha",
    epoch,
    role,
    roleSeq: epoch,
    maintenance: false,
    failedReason: null,
    apps: { web: { pid: 100 + epoch, startTime: 5, specHash: "h", restarts: 0 } },
  };
}

for (const [kind, make] of Object.entries(places)) {
  Deno.test(`state store (${kind}): nothing saved loads as null`, async () => {
    const p = await make();
    assert.deepEqual(await p.open().load(), { ok: true, state: null });
    await p.cleanup();
  });

  Deno.test(`state store (${kind}): the last of several saves is what a new store loads`, async () => {
    const p = await make();
    const s = p.open();
    await Promise.all([s.save(state(1)), s.save(state(2)), s.save(state(3, "standby"))]);
    assert.deepEqual(await p.open().load(), { ok: true, state: state(3, "standby") });
    await p.cleanup();
  });

  Deno.test(`state store (${kind}): an invalid state is refused and the old one kept`, async () => {
    const p = await make();
    const s = p.open();
    await s.save(state(1));
    const bad = { ...state(2), epoch: -1 } as PersistedState;
    await assert.rejects(s.save(bad), /expected a version-1 PersistedState/);
    assert.deepEqual(await p.open().load(), { ok: true, state: state(1) });
    await p.cleanup();
  });

  Deno.test(`state store (${kind}): a second lock is refused until the first is released`, async () => {
    const p = await make();
    const release = await p.open().lock();
    await assert.rejects(p.open().lock(), /another agent/);
    release();
    const again = await p.open().lock();
    again();
    await p.cleanup();
  });
}

Deno.test("memory store: a failing write rejects and leaves the disk as it was", async () => {
  const disk = newMemoryDisk();
  let fail = false;
  const s = new MemoryStateStore(disk, {
    policy: () => ({ delayMs: 0, error: fail ? "EIO (simulated)" : null }),
  });
  await s.save(state(1));
  fail = true;
  await assert.rejects(s.save(state(2)), /EIO/);
  assert.deepEqual(await new MemoryStateStore(disk).load(), { ok: true, state: state(1) });
});
