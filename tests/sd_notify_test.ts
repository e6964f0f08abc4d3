/**
 * The systemd notify protocol (src/agent/notify.ts) against a real unix datagram listener, and
 * the health-gated petter (src/agent/watchdog.ts) against a fake device file (never a real
 * watchdog device). Needs `--unstable-net` (`deno task test` passes it).
 */
import assert from "node:assert/strict";
import { Notifier, takeNotifyEnv } from "../src/agent/notify.ts";
import { HealthPetter, openWatchdogDevice, petPeriod } from "../src/agent/watchdog.ts";

function fakeEnv(vars: Record<string, string>) {
  const m = new Map(Object.entries(vars));
  return { get: (k: string) => m.get(k), delete: (k: string) => void m.delete(k), m };
}

async function listener() {
  const dir = await Deno.makeTempDir({ prefix: "baton-notify-test-" });
  const path = `${dir}/notify.sock`;
  const conn = Deno.listenDatagram({ transport: "unixpacket", path });
  return {
    path,
    async next(): Promise<string> {
      const [data] = await conn.receive();
      return new TextDecoder().decode(data);
    },
    async close() {
      conn.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("takeNotifyEnv: like sd_watchdog_enabled, and the variables are removed for the apps", () => {
  const e = fakeEnv({ NOTIFY_SOCKET: "/run/n", WATCHDOG_USEC: "5000000", WATCHDOG_PID: "42" });
  assert.deepEqual(takeNotifyEnv(e, 42), { socket: "/run/n", watchdogMs: 5000 });
  assert.equal(e.m.size, 0, "removed from the environment");
  const other = fakeEnv({ NOTIFY_SOCKET: "/run/n", WATCHDOG_USEC: "5000000", WATCHDOG_PID: "7" });
  assert.equal(takeNotifyEnv(other, 42).watchdogMs, null, "the watchdog is another process's");
  assert.equal(takeNotifyEnv(fakeEnv({ WATCHDOG_USEC: "0" }), 1).watchdogMs, null);
  assert.equal(takeNotifyEnv(fakeEnv({ WATCHDOG_USEC: "x" }), 1).watchdogMs, null);
  assert.deepEqual(takeNotifyEnv(fakeEnv({}), 1), { socket: null, watchdogMs: null });
  assert.equal(takeNotifyEnv(fakeEnv({ WATCHDOG_USEC: "3000" }), 1).watchdogMs, 3, "no PID: ours");
});

Deno.test("Notifier sends newline-separated lines as one datagram; STATUS only when it changes", async () => {
  const l = await listener();
  const n = new Notifier(l.path, () => {});
  try {
    assert.equal(await n.send(["READY=1", "STATUS=active"]), true);
    assert.equal(await l.next(), "READY=1\nSTATUS=active");
    await n.status("standby");
    await n.status("standby");
    await n.status("active");
    assert.equal(await l.next(), "STATUS=standby");
    assert.equal(await l.next(), "STATUS=active", "the repeated status was not sent");
  } finally {
    n.close();
    await l.close();
  }
});

Deno.test("Notifier to a missing socket logs once and never throws; no socket is a no-op", async () => {
  const logs: string[] = [];
  const n = new Notifier("/nonexistent/notify.sock", (l) => logs.push(l));
  assert.equal(await n.send(["READY=1"]), false);
  assert.equal(await n.send(["WATCHDOG=1"]), false);
  assert.equal(logs.length, 1, logs.join("\n"));
  n.close();
  const off = new Notifier(null, () => {});
  assert.equal(off.enabled, false);
  assert.equal(await off.send(["READY=1"]), false);
});

Deno.test("HealthPetter pets only after a healthy cycle on time; 'V' on a clean stop", async () => {
  const dir = await Deno.makeTempDir({ prefix: "baton-wd-test-" });
  const path = `${dir}/fake-watchdog`;
  await Deno.writeTextFile(path, "");
  const l = await listener();
  const n = new Notifier(l.path, () => {});
  let healthy = true;
  const logs: string[] = [];
  const p = new HealthPetter({
    periodMs: 3_600_000, // the test drives the beats itself
    maxLagMs: 500,
    cycle: () => healthy,
    notify: () => n.send(["WATCHDOG=1"]),
    device: await openWatchdogDevice(path),
    log: (line) => logs.push(line),
  });
  try {
    assert.equal(await p.beat(0), true);
    assert.equal(await l.next(), "WATCHDOG=1");
    assert.equal(await p.beat(900), false, "a late loop does not pet");
    healthy = false;
    assert.equal(await p.beat(0), false, "a failed cycle does not pet");
    assert.equal(await p.beat(0), false);
    healthy = true;
    assert.equal(await p.beat(10), true);
    assert.equal(await l.next(), "WATCHDOG=1", "no datagram came from the skipped beats");
    assert.deepEqual(p.stats, { pets: 2, skipped: 3, lastSkip: null });
    assert.equal(logs.length, 2, `one line per new reason: ${logs.join(" | ")}`);
    await p.stop(true);
    assert.equal(await Deno.readTextFile(path), "..V", "one byte per pet, then magic close");
  } finally {
    n.close();
    await l.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("HealthPetter without a clean stop leaves the device armed (no 'V')", async () => {
  const dir = await Deno.makeTempDir({ prefix: "baton-wd-test-" });
  const path = `${dir}/fake-watchdog`;
  await Deno.writeTextFile(path, "");
  const p = new HealthPetter({
    periodMs: 3_600_000,
    maxLagMs: 500,
    cycle: () => true,
    device: await openWatchdogDevice(path),
    log: () => {},
  });
  await p.beat(0);
  await p.stop(false);
  assert.equal(await Deno.readTextFile(path), ".");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("petPeriod: a third of the watchdog, capped", () => {
  assert.equal(petPeriod(10_000, 1_000), 1_000);
  assert.equal(petPeriod(900, 1_000), 300);
  assert.equal(petPeriod(1, 1_000), 10);
});

Deno.test("HealthPetter reports a failing device once, and its recovery", async () => {
  const facts: [boolean, string][] = [];
  let fail = true;
  const p = new HealthPetter({
    periodMs: 3_600_000,
    maxLagMs: 500,
    cycle: () => true,
    device: {
      write: (d) => fail ? Promise.reject(new Error("EIO")) : Promise.resolve(d.length),
      close: () => {},
    },
    log: () => {},
    onDevice: (ok, detail) => facts.push([ok, detail]),
  });
  await p.beat(0);
  await p.beat(0);
  fail = false;
  await p.beat(0);
  assert.deepEqual(facts.map(([ok]) => ok), [false, true]);
  assert.match(facts[0]![1], /EIO/);
  await p.stop(true);
});
