/**
 * The etcd test helper itself: three real members on loopback answer, a put/get round-trips,
 * one member killed leaves a working majority, and stop leaves no process behind.
 *
 * @module
 */
import assert from "node:assert/strict";
import { EtcdCluster, etcdMissing } from "./helpers/etcd_cluster.ts";

const missing = etcdMissing();
if (missing) console.log(`[etcd] ignored: ${missing}`);

Deno.test({
  name: "etcd_cluster: three members answer, survive one member killed, leave no process",
  ignore: missing !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const etcd = await EtcdCluster.start(3);
    const pids = etcd.members.map((m) => m.process!.pid);
    try {
      assert.equal((await etcd.etcdctl(["put", "/t/k", "v1"])).code, 0);
      const got = await etcd.etcdctl(["get", "--print-value-only", "/t/k"]);
      assert.equal(got.stdout.trim(), "v1");
      const leader = await etcd.leader();
      assert.ok(leader !== null, "one member is the leader");
      await etcd.killMember(leader);
      await etcd.waitHealthy();
      assert.equal((await etcd.etcdctl(["put", "/t/k", "v2"])).code, 0);
      await etcd.startMember(leader);
      await etcd.waitHealthy();
    } finally {
      await etcd.stop();
    }
    for (const pid of pids) {
      let alive = true;
      try {
        Deno.kill(pid, "SIGCONT");
      } catch {
        alive = false;
      }
      assert.equal(alive, false, `etcd pid ${pid} still alive after stop`);
    }
    assert.throws(() => Deno.statSync(etcd.dir));
  },
});
