/**
 * `cluster.coordinator.etcd` in the manifest: what it normalizes to, and every refusal with its
 * line and column (mutually exclusive with `witness`, whole-second TTL ≥ 2, room for renewals).
 *
 * @module
 */
import assert from "node:assert/strict";
import { formatDiagnostic, parseManifest } from "../src/manifest/load.ts";

function yaml(etcd: string[], extra: string[] = []): string {
  return [
    "cluster:",
    "  name: demo",
    "  secretFile: ./baton.secret",
    ...extra,
    "  coordinator:",
    "    etcd:",
    ...etcd.map((l) => `      ${l}`),
    "nodes:",
    '  alpha: { url: "http://127.0.0.1:7401", priority: 2 }',
    '  beta: { url: "http://127.0.0.1:7402", priority: 1 }',
    "apps: {}",
    "",
  ].join("\n");
}

async function errorsOf(text: string): Promise<string[]> {
  const r = await parseManifest(text, "m.yaml");
  assert.equal(r.ok, false, "expected the manifest to be refused");
  return r.ok ? [] : r.errors.map(formatDiagnostic);
}

Deno.test("coordinator: etcd normalizes (defaults prefix /baton, ttl 5) and needs no witness", async () => {
  const r = await parseManifest(
    yaml(['endpoints: ["http://127.0.0.1:2379", "http://127.0.0.1:22379/"]']),
    "/etc/baton/baton.yaml",
  );
  assert.ok(r.ok, r.ok ? "" : r.errors.map(formatDiagnostic).join("\n"));
  assert.deepEqual(r.manifest.cluster.coordinator, {
    etcd: {
      endpoints: ["http://127.0.0.1:2379", "http://127.0.0.1:22379"],
      prefix: "/baton",
      ttlSeconds: 5,
      tls: null,
    },
  });
  assert.equal(r.manifest.cluster.witness, null);
  assert.deepEqual(r.warnings.filter((w) => /witness/.test(w.message)), [], "no two-node warning");
});

Deno.test("coordinator: tls paths come out absolute; prefix and ttl as given", async () => {
  const r = await parseManifest(
    yaml([
      'endpoints: ["https://10.0.0.1:2379"]',
      "prefix: /prod/",
      "ttl: 30",
      "tls: { ca: ./ca.pem, cert: ./c.pem, key: ./k.pem }",
    ]),
    "/etc/baton/baton.yaml",
  );
  assert.ok(r.ok, r.ok ? "" : r.errors.map(formatDiagnostic).join("\n"));
  assert.deepEqual(r.manifest.cluster.coordinator?.etcd, {
    endpoints: ["https://10.0.0.1:2379"],
    prefix: "/prod",
    ttlSeconds: 30,
    tls: { ca: "/etc/baton/ca.pem", cert: "/etc/baton/c.pem", key: "/etc/baton/k.pem" },
  });
});

Deno.test("coordinator: witness and coordinator together are refused at the witness", async () => {
  const errs = await errorsOf(
    yaml(['endpoints: ["http://127.0.0.1:2379"]'], ['  witness: "http://127.0.0.1:7400"']),
  );
  assert.deepEqual(errs, [
    "m.yaml:4:12: cluster.witness and cluster.coordinator are mutually exclusive: with etcd " +
    "as the coordinator, remove the witness",
  ]);
});

Deno.test("coordinator: ttl must be whole seconds, at least 2", async () => {
  for (
    const [ttl, want] of [
      ["1", /m\.yaml:7:12: expected a lease TTL of at least 2 whole seconds .*found the number 1/],
      ["2.5", /m\.yaml:7:12: expected the lease TTL in whole seconds .*found the number 2\.5/],
      ['"5s"', /m\.yaml:7:12: expected the lease TTL in whole seconds .*found "5s"/],
    ] as const
  ) {
    const errs = await errorsOf(yaml(['endpoints: ["http://127.0.0.1:2379"]', `ttl: ${ttl}`]));
    assert.equal(errs.length, 1, errs.join("\n"));
    assert.match(errs[0]!, want);
  }
});

Deno.test("coordinator: a ttl too short for the heartbeat interval is refused with the rule", async () => {
  const errs = await errorsOf(
    yaml(['endpoints: ["http://127.0.0.1:2379"]', "ttl: 2"], [
      "  heartbeat: { interval: 1s, deadAfter: 5s }",
    ]),
  );
  assert.equal(errs.length, 1, errs.join("\n"));
  assert.match(
    errs[0]!,
    /^m\.yaml:8:12: a lease TTL of 2 s is too short for heartbeat\.interval 1000 ms/,
  );
});

Deno.test("coordinator: bad endpoints and unknown keys are refused where they are", async () => {
  const empty = await errorsOf(yaml(["endpoints: []"]));
  assert.match(empty[0]!, /^m\.yaml:6:18: expected at least one etcd endpoint/);
  const bad = await errorsOf(yaml(['endpoints: ["127.0.0.1:2379"]']));
  assert.match(bad[0]!, /^m\.yaml:6:19: expected an etcd client URL/);
  const unknown = await errorsOf(yaml(['endpoints: ["http://127.0.0.1:2379"]', "tll: 5"]));
  assert.match(unknown[0]!, /^m\.yaml:7:7: unknown key "tll"/);
  const mixed = await errorsOf(
    yaml(['endpoints: ["https://127.0.0.1:2379"]']),
  );
  assert.match(mixed[0]!, /https etcd endpoints need cluster\.coordinator\.etcd\.tls/);
});
