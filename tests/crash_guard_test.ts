/**
 * The crash guard (src/agent/crash_guard.ts): uncaught errors are logged and the process goes
 * on; a {@linkcode FatalAgentError} is handed to `onFatal`; a lost state directory lock is
 * fatal.
 */
import assert from "node:assert/strict";
import { checkLockHeld, FatalAgentError, installCrashGuard } from "../src/agent/crash_guard.ts";
import { acquireLock } from "../src/store/state_store.ts";

Deno.test("installCrashGuard logs an unhandled rejection and a timer's throw; the process goes on", async () => {
  const logs: string[] = [];
  const fatal: FatalAgentError[] = [];
  const uninstall = installCrashGuard({ log: (l) => logs.push(l), onFatal: (e) => fatal.push(e) });
  try {
    Promise.reject(new Error("rejected in a handler"));
    setTimeout(() => {
      throw new Error("thrown in a timer");
    }, 0);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(logs.some((l) => /unhandled rejection.*rejected in a handler/.test(l)), logs.join());
    assert.ok(logs.some((l) => /uncaught exception.*thrown in a timer/.test(l)), logs.join());
    assert.equal(fatal.length, 0);
    Promise.reject(new FatalAgentError("lock lost"));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(fatal[0]?.message, "lock lost");
  } finally {
    uninstall();
  }
});

Deno.test("checkLockHeld passes while the lock file names this agent, is fatal once it is gone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "baton-guard-test-" });
  const release = await acquireLock(dir);
  try {
    await checkLockHeld(dir);
    await assert.rejects(() => checkLockHeld(dir, Deno.pid + 1), FatalAgentError);
    await Deno.remove(`${dir}/agent.pid`);
    await assert.rejects(() => checkLockHeld(dir), /is gone/);
  } finally {
    release();
    await Deno.remove(dir, { recursive: true });
  }
});
