/**
 * Floating IPs without a network: `cluster.vip` validation (with line and column), the address
 * arithmetic, and the driver over a twin host (conflicts, adoption, a refused add that a later
 * start makes good). The real `ip` and the guard are in vip_netns_test.ts.
 */
import assert from "node:assert/strict";
import { type Diagnostic, parseManifest } from "../src/manifest/load.ts";
import type { VipSpec } from "../src/manifest/types.ts";
import { parseCidr, parseIp } from "../src/manifest/vip.ts";
import { parseIpAddrShow, type VipHost } from "../src/vip/ip_addr.ts";
import { VipDriver } from "../src/vip/vip_driver.ts";
import { GuardLeaseDriver, type GuardPort } from "../src/guard/lease_driver.ts";
import { appSpec, boot, makeManifest, runCluster } from "./helpers/core_fixtures.ts";

const NODES = "nodes:\n  alpha: { url: http://127.0.0.1:7401 }\n";

async function load(vipLines: string[]) {
  const text = ["cluster:", "  vip:", ...vipLines, NODES].join("\n");
  return { text, result: await parseManifest(text, "m.yaml") };
}

function where(text: string, d: Diagnostic): string {
  return `${d.line}:${d.col} ${text.split("\n")[d.line - 1]?.slice(d.col - 1, d.col + 11)}`;
}

Deno.test("cluster.vip: IPv4 and IPv6 entries load, canonical, several allowed", async () => {
  const { result } = await load([
    "    - { address: 10.0.0.100/24, interface: eth0 }",
    '    - { address: "2001:DB8:0:0:0:0:0:100/64", interface: bond0.12 }',
  ]);
  assert.ok(result.ok, result.ok ? "" : JSON.stringify(result.errors));
  assert.deepEqual(result.manifest.cluster.vip, [
    { address: "10.0.0.100", prefix: 24, family: 4, cidr: "10.0.0.100/24", interface: "eth0" },
    {
      address: "2001:db8::100",
      prefix: 64,
      family: 6,
      cidr: "2001:db8::100/64",
      interface: "bond0.12",
    },
  ]);
});

Deno.test("cluster.vip: no vip key means no floating IPs (the field is absent)", async () => {
  const result = await parseManifest(NODES, "m.yaml");
  assert.ok(result.ok);
  assert.equal(result.manifest.cluster.vip, undefined);
});

Deno.test("cluster.vip: bad address, prefix, interface and duplicates are errors at their line:col", async () => {
  const { text, result } = await load([
    "    - { address: 10.0.0.300/24, interface: eth0 }",
    "    - { address: 10.0.0.5, interface: eth0 }",
    "    - { address: 10.0.0.6/33, interface: eth0 }",
    '    - { address: "fe80::1::2/64", interface: eth0 }',
    '    - { address: 10.0.0.7/24, interface: "eth 0" }',
    "    - { address: 10.0.0.8/24, interface: averyveryverylongname }",
    "    - { address: 10.0.0.9/24 }",
    "    - 10.0.0.10/24",
  ]);
  assert.equal(result.ok, false);
  const got = result.ok ? [] : result.errors.map((d) => `${where(text, d)} | ${d.message}`);
  const expect: [string, RegExp][] = [
    ["3:18 10.0.0.300/2", /expected an IPv4 or IPv6 address before "\/", found "10.0.0.300"/],
    ["4:18 10.0.0.5, in", /with its prefix length .* found "10.0.0.5" \(no "\/"\)/],
    ["5:18 10.0.0.6/33,", /prefix length 0..32 after the IPv4 address, found "33"/],
    ['6:18 "fe80::1::2', /IPv4 or IPv6 address before "\/", found "fe80::1::2"/],
    ['7:42 "eth 0" }', /expected an interface name .* found "eth 0"/],
    ["8:42 averyveryver", /found "averyveryverylongname"/],
    ["9:7 { address: ", /missing required key "interface"/],
    ["10:7 10.0.0.10/24", /expected a floating IP mapping .* found "10.0.0.10\/24"/],
  ];
  assert.equal(got.length, expect.length, got.join("\n"));
  for (const [pos, re] of expect) {
    const hit = got.find((g) => g.startsWith(pos) && re.test(g));
    assert.ok(hit, `expected an error at ${pos} matching ${re}, found:\n${got.join("\n")}`);
  }
});

Deno.test("cluster.vip: the same address twice is an error at the second one", async () => {
  const { text, result } = await load([
    "    - { address: 10.0.0.7/24, interface: eth0 }",
    '    - { address: "2001:db8::1/64", interface: eth0 }',
    '    - { address: "2001:DB8:0::1/64", interface: eth1 }',
  ]);
  assert.equal(result.ok, false);
  const got = result.ok ? [] : result.errors.map((d) => `${where(text, d)} | ${d.message}`);
  assert.equal(got.length, 1, got.join("\n"));
  assert.match(
    got[0]!,
    /^5:18 "2001:DB8:0: \| expected each floating IP once, found 2001:db8::1 again \(entry 2\)/,
  );
});

Deno.test("parseIp / parseCidr: canonical forms (RFC 5952 for IPv6), and what is refused", () => {
  assert.deepEqual(parseIp("2001:0DB8:0000:0000:0001:0000:0000:0001"), {
    address: "2001:db8::1:0:0:1",
    family: 6,
  });
  assert.equal(parseIp("::")?.address, "::");
  assert.equal(parseIp("::ffff:10.0.0.1")?.address, "::ffff:a00:1");
  assert.equal(parseIp("fe80::")?.address, "fe80::");
  assert.equal(parseIp("1:0:0:2:0:0:0:3")?.address, "1:0:0:2::3");
  for (const bad of ["010.0.0.1", "1.2.3", "1.2.3.4.5", "1::2::3", "12345::", "g::1", ""]) {
    assert.equal(parseIp(bad), null, bad);
  }
  assert.deepEqual(parseCidr("10.0.0.100/24"), { address: "10.0.0.100", prefix: 24, family: 4 });
  assert.match(String(parseCidr("::1/129")), /0..128/);
});

Deno.test("parseIpAddrShow: the addresses of `ip -o addr show`, canonical", () => {
  const out = [
    "2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever",
    "2: eth0    inet 10.0.0.100/24 scope global secondary eth0\\       valid_lft forever",
    "2: eth0    inet6 2001:db8::100/64 scope global nodad \\       valid_lft forever",
  ].join("\n");
  assert.deepEqual(parseIpAddrShow(out), ["10.0.0.5", "10.0.0.100", "2001:db8::100"]);
});

/** A host that keeps addresses in a map; `fail` makes the next add throw. */
function twinHost() {
  const addrs = new Map<string, Set<string>>();
  const calls: string[] = [];
  let failAdd: string | null = null;
  const host: VipHost = {
    list: (i) => Promise.resolve([...(addrs.get(i) ?? [])]),
    add: (v) => {
      calls.push(`add ${v.cidr}`);
      if (failAdd) return Promise.reject(new Error(failAdd));
      addrs.set(v.interface, new Set([...(addrs.get(v.interface) ?? []), v.address]));
      return Promise.resolve();
    },
    remove: (v) => {
      calls.push(`del ${v.cidr}`);
      addrs.get(v.interface)?.delete(v.address);
      return Promise.resolve();
    },
    announce: (v) => void calls.push(`announce ${v.address}`),
    close: () => {},
  };
  return {
    host,
    addrs,
    calls,
    failNextAdds: (why: string | null) => (failAdd = why),
  };
}

const V: VipSpec = {
  address: "10.0.0.100",
  prefix: 24,
  family: 4,
  cidr: "10.0.0.100/24",
  interface: "eth0",
};

function driver() {
  const twin = twinHost();
  const d = new VipDriver(twin.host);
  const reports: string[] = [];
  d.attach((level, kind, message) => reports.push(`${level} ${kind}: ${message}`));
  return { d, twin, reports };
}

Deno.test("VipDriver: add announces, remove removes; status says held", async () => {
  const { d, twin, reports } = driver();
  await d.apply({ op: "add", vips: [V], adopt: false, reason: "active at epoch 3" });
  assert.deepEqual(twin.calls, ["add 10.0.0.100/24", "announce 10.0.0.100"]);
  assert.deepEqual(d.status([V]), [
    { address: "10.0.0.100/24", interface: "eth0", held: true, error: null },
  ]);
  await d.apply({ op: "remove", vips: [V], adopt: false, reason: "node is standby" });
  assert.deepEqual(twin.addrs.get("eth0"), new Set());
  assert.equal(d.status([V])[0]?.held, false);
  assert.deepEqual(reports.map((r) => r.split(":")[0]), ["info vip_added", "info vip_removed"]);
});

Deno.test("VipDriver: an address already on the interface at takeover is a conflict in status, not a silent duplicate", async () => {
  const { d, twin, reports } = driver();
  twin.addrs.set("eth0", new Set(["10.0.0.100"]));
  await d.apply({ op: "add", vips: [V], adopt: false, reason: "active at epoch 3" });
  const s = d.status([V])[0]!;
  assert.equal(s.held, true);
  assert.match(
    s.error ?? "",
    /^CONFLICT: 10.0.0.100\/24 was already on eth0 before this node took over/,
  );
  assert.ok(reports.some((r) => r.startsWith("error vip_conflict")), reports.join("\n"));
  assert.ok(!twin.calls.includes("add 10.0.0.100/24"), "not added twice");
  // It goes with the apps like any other; the conflict clears with it.
  await d.apply({ op: "remove", vips: [V], adopt: false, reason: "node is standby" });
  assert.deepEqual(d.status([V])[0], {
    address: "10.0.0.100/24",
    interface: "eth0",
    held: false,
    error: null,
  });
});

Deno.test("VipDriver: a resumed active adopts an address that is there (no conflict)", async () => {
  const { d, twin, reports } = driver();
  twin.addrs.set("eth0", new Set(["10.0.0.100"]));
  await d.apply({ op: "add", vips: [V], adopt: true, reason: "resumed" });
  assert.deepEqual(d.status([V])[0]?.error, null);
  assert.equal(d.status([V])[0]?.held, true);
  assert.ok(reports.every((r) => !r.startsWith("error")), reports.join("\n"));
});

Deno.test("VipDriver: a refused or failed add stays wanted; ensure() adds it before the next start", async () => {
  const { d, twin } = driver();
  await d.apply({ op: "add", vips: [V], adopt: false, reason: "x" }, "cannot write state");
  assert.deepEqual(twin.calls, [], "nothing added while the role is not on disk");
  assert.match(d.status([V])[0]?.error ?? "", /not added on eth0 yet: cannot write state/);
  twin.failNextAdds("RTNETLINK answers: Operation not permitted");
  await d.ensure();
  assert.match(d.status([V])[0]?.error ?? "", /cannot add 10.0.0.100\/24 on eth0: RTNETLINK/);
  twin.failNextAdds(null);
  await d.ensure();
  assert.deepEqual(d.status([V])[0], {
    address: "10.0.0.100/24",
    interface: "eth0",
    held: true,
    error: null,
  });
  assert.equal(d.ensure(), null, "nothing left to do");
  // A removal drops the wish too.
  await d.apply({ op: "add", vips: [V], adopt: false, reason: "x" }, "cannot write state");
  await d.apply({ op: "remove", vips: [V], adopt: false, reason: "standby" });
  assert.equal(d.ensure(), null);
});

Deno.test("VipDriver: a boot cleanup removes a leftover (warned) and says nothing when none is there", async () => {
  const { d, twin, reports } = driver();
  await d.apply({ op: "remove", vips: [V], adopt: false, reason: "node is standby" });
  assert.deepEqual(reports, []);
  twin.addrs.set("eth0", new Set(["10.0.0.100"]));
  await d.apply({ op: "remove", vips: [V], adopt: false, reason: "node is standby" });
  assert.equal(twin.addrs.get("eth0")?.size, 0);
  assert.match(reports[0] ?? "", /^warn vip_removed: 10.0.0.100\/24 off eth0 \(a leftover\)/);
});

Deno.test("README's Floating IPs example loads (with a node added), as the section says", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const at = readme.indexOf("\n### Floating IPs\n");
  assert.ok(at >= 0, "README has a Floating IPs section");
  const block = /```yaml\n([\s\S]*?)```/.exec(readme.slice(at))?.[1];
  assert.ok(block, "the Floating IPs section has a yaml block");
  const result = await parseManifest(block + NODES, "README.md");
  assert.ok(result.ok, result.ok ? "" : JSON.stringify(result.errors));
  assert.deepEqual(result.manifest.cluster.vip?.map((v) => `${v.cidr} ${v.interface}`), [
    "10.0.0.100/24 eth0",
    "2001:db8::100/64 eth0",
  ]);
});

Deno.test("GuardLeaseDriver: floating IPs are guard targets after the apps; a step-down keeps the lease until its removal returned", async () => {
  const base = makeManifest({
    nodes: { alpha: 2, beta: 1 },
    apps: [appSpec("web")],
    witness: true,
  });
  const m = { ...base, cluster: { ...base.cluster, vip: [V] } };
  const a = boot("alpha", m);
  const b = boot("beta", m);
  runCluster([a, b], 0, 8_000);
  a.witness(8_000, "baton");
  const orders: string[] = [];
  let targets: string[] = [];
  const port: GuardPort = {
    open: () => {},
    arm: (ms) => void orders.push(`arm ${ms}`),
    disarm: () => void orders.push("disarm"),
    setTargets: (lines) => void (targets = lines),
    status: () => ({ pid: 1, lease: { kind: "unknown" }, replaced: 0, error: null }),
    close: () => {},
  };
  const lease = new GuardLeaseDriver(null, {
    unavailable: () => null,
    port: () => port,
    toUptime: (now) => now,
  });
  lease.observe(a.state, 8_000, { type: "boot", persisted: null, adopted: [], lost: [] }, true);
  assert.equal(orders.at(-1)?.split(" ")[0], "arm");
  assert.equal(targets.at(-1), "ip 10.0.0.100/24 eth0", targets.join("\n"));
  assert.ok(
    targets.indexOf("ip 10.0.0.100/24 eth0") > targets.findIndex((t) => t.startsWith("pg")),
  );
  const newer = { ...b.info(), role: "active" as const, epoch: a.state.epoch + 1 };
  a.hear(newer, 8_100);
  assert.equal(a.state.role, "standby");
  let done = () => {};
  lease.hold(new Promise<void>((r) => (done = r)));
  lease.observe(a.state, 8_100, { type: "tick" }, true);
  assert.notEqual(orders.at(-1), "disarm", "still armed while the addresses are being removed");
  done();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(orders.at(-1), "disarm");
});
