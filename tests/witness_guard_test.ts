/**
 * The witness's public port is guarded like a node's (`peer/conn_guard.ts`): 1,000 hostile
 * slow connections (slow heads, slow 10 MB bodies, from 100 untrusted loopback addresses)
 * neither stop it answering a node's signed beats nor hold more sockets than the connection
 * cap. Needs python3 (the attacker of `scripts/flood_attacker.ts`; `.ci/run` installs it).
 *
 * @module
 */
import assert from "node:assert/strict";
import { PeerClient } from "../src/peer/client.ts";
import { serveWitness } from "../src/witness/run_witness.ts";
import { WITNESS_BEAT_PATH } from "../src/witness/witness_app.ts";
import { spawnAttacker } from "../scripts/flood_attacker.ts";

const SECRET = "witness-guard-test-secret-0123456789";

const hasPython = (() => {
  try {
    return new Deno.Command("python3", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

Deno.test({
  name: "witness: 1,000 hostile slow connections do not stop it answering signed beats, and " +
    "it holds no more of them than its connection cap",
  ignore: !hasPython,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const maxConns = 128;
    const w = await serveWitness({
      hostname: "127.0.0.1",
      port: 0,
      secret: SECRET,
      leaseMs: 1_000,
      host: null,
      maxConns,
      trusted: new Set(["127.0.0.1"]), // the node below; the attacker uses 127.0.0.2…
    });
    const client = new PeerClient({ node: "alpha", secret: SECRET, timeoutMs: 5_000 });
    const url = `http://127.0.0.1:${w.port}`;
    const fdsBefore = openFds();
    const attacker = spawnAttacker("127.0.0.1", w.port, 1000, 8);
    try {
      // Let the flood build up (the attacker opens its 1,000 sockets at once).
      await new Promise((r) => setTimeout(r, 1_500));
      let answered = 0;
      let maxFds = 0;
      let worst = 0;
      const failures: string[] = [];
      for (let i = 0; i < 30; i++) {
        const t = performance.now();
        try {
          const reply = await client.post(url, WITNESS_BEAT_PATH, {
            node: "alpha",
            role: "standby",
            epoch: 1,
          }) as { ok?: boolean; witness?: string };
          if (reply.ok === true && reply.witness === "baton") answered++;
          else failures.push(JSON.stringify(reply));
        } catch (err) {
          failures.push((err as Error).message);
        }
        worst = Math.max(worst, performance.now() - t);
        maxFds = Math.max(maxFds, openFds());
        await new Promise((r) => setTimeout(r, 100));
      }
      const stats = w.guard.stats();
      console.log(
        `[witness flood] beats answered ${answered}/30, worst ${Math.round(worst)} ms; open fds ` +
          `${fdsBefore} → max ${maxFds}; guard refused ${stats.refused}, head timeouts ` +
          `${stats.headTimeouts}`,
      );
      assert.deepEqual(failures, [], "expected every signed beat answered during the flood");
      assert.equal(answered, 30);
      assert.ok(stats.refused > 0, "expected the guard to refuse connections beyond its caps");
      // Each admitted connection costs the witness a socket and one to its inner server.
      assert.ok(
        maxFds - fdsBefore <= 2 * maxConns + 32,
        `expected at most ~${2 * maxConns} sockets held for the flood, found ${maxFds - fdsBefore}`,
      );
    } finally {
      attacker.kill();
      await attacker.reconnects.catch(() => {});
      client.close();
      await w.shutdown();
    }
  },
});
