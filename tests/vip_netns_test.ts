/**
 * Floating IPs on a real interface: the `ip addr` host of src/vip/ and the guard's removal on
 * lease expiry, each in a network namespace of its own with a veth interface (root and `ip`
 * needed, else skipped with the reason). The namespace is deleted in `finally`.
 */
import assert from "node:assert/strict";
import { GUARD_SCRIPT } from "../src/guard/guard_script.ts";
import { parseCidr } from "../src/manifest/vip.ts";
import type { VipSpec } from "../src/manifest/types.ts";
import { findCommand, realVipHost } from "../src/vip/ip_addr.ts";
import { VipDriver } from "../src/vip/vip_driver.ts";

const why = (() => {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "not root";
  if (findCommand("ip") === null) return "no `ip` (iproute2)";
  return null;
})();
if (why) console.log(`[vip] netns tests SKIPPED: ${why}`);

function spec(cidr: string, iface = "vip0"): VipSpec {
  const c = parseCidr(cidr);
  if (typeof c === "string") throw new Error(c);
  return { ...c, cidr: `${c.address}/${c.prefix}`, interface: iface };
}

async function sh(...args: string[]): Promise<string> {
  const r = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (!r.success) throw new Error(`ip ${args.join(" ")}: ${dec.decode(r.stderr)}`);
  return dec.decode(r.stdout);
}

/** A namespace with an interface `vip0` (up, 10.99.0.1/24), deleted on dispose. */
async function namespace() {
  const ns = `btnv${crypto.randomUUID().slice(0, 6)}`;
  await sh("netns", "add", ns);
  try {
    // A veth pair (no dummy module everywhere); vip1 only keeps vip0's carrier up.
    await sh("-n", ns, "link", "add", "vip0", "type", "veth", "peer", "name", "vip1");
    await sh("-n", ns, "link", "set", "vip1", "up");
    await sh("-n", ns, "link", "set", "vip0", "up");
    await sh("-n", ns, "addr", "add", "10.99.0.1/24", "dev", "vip0");
  } catch (err) {
    await sh("netns", "del", ns).catch(() => {});
    throw err;
  }
  return {
    ns,
    held: async () => await sh("-n", ns, "-o", "addr", "show", "dev", "vip0"),
    [Symbol.asyncDispose]: async () => {
      await sh("netns", "del", ns).catch(() => {});
    },
  };
}

Deno.test({
  name:
    "realVipHost: adds, lists, announces and removes IPv4 and IPv6 addresses on a real interface",
  ignore: why !== null,
  fn: async () => {
    await using n = await namespace();
    const host = realVipHost({ netns: n.ns });
    const v4 = spec("10.99.0.100/24");
    const v6 = spec("2001:db8:99::100/64");
    try {
      await host.add(v4);
      await host.add(v6);
      assert.deepEqual((await host.list("vip0")).filter((a) => a.endsWith("100")), [
        "10.99.0.100",
        "2001:db8:99::100",
      ]);
      host.announce(v4); // in the background, bounded
      host.announce(v6);
      await assert.rejects(host.add(v4), /already assigned|File exists/, "a second add is refused");
      await host.remove(v4);
      await host.remove(v4); // already gone: no error
      await host.remove(v6);
      assert.doesNotMatch(await n.held(), /10\.99\.0\.100|2001:db8:99::100/);
      await assert.rejects(host.list("nosuch0"), /nosuch0/);
    } finally {
      host.close();
    }
  },
});

Deno.test({
  name: "realVipHost.announce: a client's cached entry for the address moves to the new " +
    "holder's MAC without the client asking (gratuitous ARP, unsolicited NA with override)",
  ignore: why !== null || findCommand("arping") === null || findCommand("na6") === null,
  fn: async () => {
    await using n = await namespace();
    // The client: vip1, moved into a namespace of its own, on the same link as vip0.
    const client = `${n.ns}c`;
    await sh("netns", "add", client);
    const host = realVipHost({ netns: n.ns });
    try {
      await sh("-n", n.ns, "link", "set", "vip1", "netns", client);
      await sh("-n", client, "link", "set", "vip1", "up");
      await sh("-n", client, "addr", "add", "10.99.0.2/24", "dev", "vip1");
      await sh("-n", client, "addr", "add", "2001:db8:99::2/64", "dev", "vip1", "nodad");
      const mac = /link\/ether (\S+)/.exec(await sh("-n", n.ns, "link", "show", "vip0"))![1]!;
      // What the client cached of the old holder: another MAC, as after a failover.
      const old = "02:00:00:00:00:99";
      for (const a of ["10.99.0.100", "2001:db8:99::100"]) {
        await sh("-n", client, "neigh", "replace", a, "lladdr", old, "dev", "vip1", "nud", "stale");
      }
      const cached = async (a: string) =>
        /lladdr (\S+)/.exec(await sh("-n", client, "neigh", "show", a, "dev", "vip1"))?.[1];
      assert.equal(await cached("10.99.0.100"), old);
      const v4 = spec("10.99.0.100/24");
      const v6 = spec("2001:db8:99::100/64");
      await host.add(v4);
      await host.add(v6);
      host.announce(v4);
      host.announce(v6);
      // arping -U sends 3 at 1 s intervals; the first already moves the entry. Bounded wait.
      const end = Date.now() + 10_000;
      let seen: (string | undefined)[] = [];
      while (Date.now() < end) {
        seen = [await cached("10.99.0.100"), await cached("2001:db8:99::100")];
        if (seen.every((m) => m === mac)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(seen, [mac, mac], `expected the client's entries to name ${mac}`);
    } finally {
      host.close();
      await sh("netns", "del", client).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "VipDriver on a real interface: an address already present at takeover is a conflict in status",
  ignore: why !== null,
  fn: async () => {
    await using n = await namespace();
    const host = realVipHost({ netns: n.ns });
    const d = new VipDriver(host);
    const reports: string[] = [];
    d.attach((level, kind, message) => reports.push(`${level} ${kind}: ${message}`));
    const v = spec("10.99.0.100/24");
    try {
      await sh("-n", n.ns, "addr", "add", "10.99.0.100/24", "dev", "vip0");
      await d.apply({ op: "add", vips: [v], adopt: false, reason: "active at epoch 4" });
      assert.match(
        d.status([v])[0]?.error ?? "",
        /^CONFLICT: 10\.99\.0\.100\/24 was already on vip0/,
      );
      assert.ok(reports.some((r) => r.startsWith("error vip_conflict")), reports.join("\n"));
      await d.apply({ op: "remove", vips: [v], adopt: false, reason: "node is standby" });
      assert.doesNotMatch(await n.held(), /10\.99\.0\.100/);
      assert.equal(d.status([v])[0]?.held, false);
    } finally {
      d.close();
    }
  },
});

Deno.test({
  name: "guard: on lease expiry it removes the floating IPs in its targets (after the kills)",
  ignore: why !== null || findCommand("bash") === null,
  fn: async () => {
    await using n = await namespace();
    const dir = await Deno.makeTempDir({ prefix: "baton-vip-guard-" });
    await sh("-n", n.ns, "addr", "add", "10.99.0.100/24", "dev", "vip0");
    await sh("-n", n.ns, "addr", "add", "2001:db8:99::100/64", "dev", "vip0", "nodad");
    const victim = new Deno.Command("sleep", { args: ["60"] }).spawn();
    let guard: Deno.ChildProcess | null = null;
    try {
      const mk = await new Deno.Command("mkfifo", { args: ["-m", "0600", `${dir}/fifo`] }).output();
      assert.ok(mk.success);
      const start = Deno.readTextFileSync(`/proc/${victim.pid}/stat`);
      const startTime = start.slice(start.lastIndexOf(")") + 2).split(" ")[19];
      await Deno.writeTextFile(
        `${dir}/targets`,
        `pg ${victim.pid} ${startTime}\nip 10.99.0.100/24 vip0\nip 2001:db8:99::100/64 vip0\n`,
      );
      const fifo = await Deno.open(`${dir}/fifo`, { read: true, write: true });
      guard = new Deno.Command("ip", {
        args: ["netns", "exec", n.ns, "bash", "-c", GUARD_SCRIPT, "baton-guard", dir],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const up = Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]) * 1000;
      await fifo.write(new TextEncoder().encode(`L ${Math.round(up + 300)}\n`));
      let fenced = "";
      for (let i = 0; i < 100 && fenced === ""; i++) {
        await new Promise((r) => setTimeout(r, 50));
        fenced = await Deno.readTextFile(`${dir}/fenced`).catch(() => "");
      }
      assert.match(fenced, /expired/, "the guard fenced within 5 s");
      assert.equal((await victim.status).signal, "SIGKILL");
      assert.doesNotMatch(await n.held(), /10\.99\.0\.100|2001:db8:99::100/);
      assert.match(await n.held(), /10\.99\.0\.1\//, "only the floating IPs are removed");
      await fifo.write(new TextEncoder().encode("Q\n"));
      fifo.close();
    } finally {
      try {
        victim.kill("SIGKILL");
      } catch { /* gone */ }
      await victim.status;
      if (guard) {
        try {
          guard.kill("SIGKILL");
        } catch { /* gone */ }
        await guard.status;
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
