/**
 * A real `baton run` under a fake systemd: the test listens on a unix datagram socket named by
 * NOTIFY_SOCKET (with WATCHDOG_USEC set) and gives the agent a fake watchdog device (a plain
 * file, never a real device). The agent must say READY=1 once its app runs, pet WATCHDOG=1 and
 * the device while healthy, stop petting while it is frozen, say STOPPING=1 on SIGTERM and
 * close the device with 'V'. Needs `--unstable-net` (`deno task test`).
 */
import assert from "node:assert/strict";
import { alive, LocalCluster } from "../scripts/local_cluster.ts";

const IT = { sanitizeOps: false, sanitizeResources: false } as const;

Deno.test(
  "baton run under Type=notify: READY after its app runs, health-gated pets, STOPPING, magic close",
  IT,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "baton-notify-it-" });
    const sock = `${dir}/notify.sock`;
    const device = `${dir}/fake-watchdog`;
    await Deno.writeTextFile(device, "");
    const conn = Deno.listenDatagram({ transport: "unixpacket", path: sock });
    const got: string[] = [];
    const waiters: (() => void)[] = [];
    (async () => {
      try {
        for (;;) {
          const [data] = await conn.receive();
          got.push(new TextDecoder().decode(data));
          for (const w of waiters.splice(0)) w();
        }
      } catch { /* closed */ }
    })();
    const c = await LocalCluster.create({
      nodes: [{ name: "solo", priority: 100 }],
      clusterExtra: `  watchdog: { mode: automatic, device: "${device}" }`,
      apps: () => `  idle:\n    command: ["sleep", "infinity", "${Date.now() % 1e9}"]`,
      env: {
        solo: { ...Deno.env.toObject(), NOTIFY_SOCKET: sock, WATCHDOG_USEC: "900000" },
      },
    });
    const seen = (pred: (m: string) => boolean, what: string) =>
      c.waitFor(what, () => Promise.resolve(got.some(pred) || null), 60_000);
    try {
      await c.startAgent("solo");
      await seen((m) => m.includes("READY=1"), "READY=1");
      const ready = got.find((m) => m.includes("READY=1"))!;
      assert.match(ready, /STATUS=active at epoch \d+, 1\/1 apps running/, ready);
      const s = await c.waitRunning("solo", ["idle"], 30_000);
      const pid = s.apps[0]!.pid!;
      assert.ok(alive(pid));
      const environ = await Deno.readTextFile(`/proc/${pid}/environ`);
      assert.ok(!environ.includes("NOTIFY_SOCKET="), "the app does not inherit the notify socket");
      assert.ok(!environ.includes("WATCHDOG_USEC="), "nor the watchdog");
      await seen((m) => m === "WATCHDOG=1", "WATCHDOG=1");
      const petsBefore = (await Deno.readTextFile(device)).length;
      assert.ok(petsBefore > 0, "the device was petted");

      // Frozen: no cycle runs, so nothing is petted (a stopped process sends nothing at all).
      const agent = c.agents.get("solo")!;
      Deno.kill(agent.pid, "SIGSTOP");
      const frozenAt = got.length;
      const deviceFrozen = (await Deno.readTextFile(device)).length;
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal(got.length, frozenAt, "no datagram from a frozen agent");
      assert.equal((await Deno.readTextFile(device)).length, deviceFrozen);
      Deno.kill(agent.pid, "SIGCONT");
      const after = got.length;
      await c.waitFor(
        "a pet after SIGCONT",
        () => Promise.resolve(got.slice(after).includes("WATCHDOG=1") || null),
        30_000,
      );

      await c.killAgent("solo", "SIGTERM");
      assert.ok(
        got.some((m) => m.startsWith("STOPPING=1")),
        got.join(" | "),
      );
      const bytes = await Deno.readTextFile(device);
      assert.ok(bytes.endsWith("V"), `magic close: ${bytes.slice(-10)}`);
      assert.ok(!bytes.slice(0, -1).includes("V"), "'V' only at the end");
      assert.ok(alive(pid), "the app outlives the agent");
    } finally {
      conn.close();
      await c.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test(
  "baton run with watchdog required and no device stays standby and starts no movable app",
  IT,
  async () => {
    const c = await LocalCluster.create({
      nodes: [{ name: "solo", priority: 100 }],
      clusterExtra: `  watchdog: { mode: required, device: "/nonexistent/watchdog-${Date.now()}" }`,
      apps: () => `  idle:\n    command: ["sleep", "infinity", "${Date.now() % 1e9}"]`,
    });
    try {
      await c.startAgent("solo");
      const s = await c.waitFor("a hold for want of the watchdog", async () => {
        const s = await c.status("solo");
        return s?.events.some((e) => e.kind === "hold" && /watchdog required/.test(e.message))
          ? s
          : null;
      }, 60_000);
      assert.equal(s.role, "standby");
      assert.ok(s.apps.every((a) => a.pid === null), JSON.stringify(s.apps));
    } finally {
      await c.stop();
    }
  },
);
