/**
 * Integration test of optional TLS (`cluster.tls: { cert, key, ca }`): a real two-node
 * cluster whose node URLs are `https://127.0.0.1:<port>`, with a throwaway CA and one server
 * certificate (SAN IP:127.0.0.1, DNS:localhost) made by `openssl` for the test. Skipped, with
 * the reason printed, when `openssl` is not installed.
 */
import assert from "node:assert/strict";
import { LocalCluster, sampleAppCommand, type Status } from "../scripts/local_cluster.ts";

const WAIT_MS = 20_000;
const opts = { sanitizeOps: false, sanitizeResources: false };

/** Why the test cannot run here, or null when `openssl` works. */
function _opensslMissing(): string | null {
  try {
    const out = new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync();
    return out.success ? null : `"openssl version" exited with ${out.code}`;
  } catch (err) {
    return `openssl not available (${(err as Error).message})`;
  }
}

const SKIP = _opensslMissing();
if (SKIP) console.log(`integration_tls_test: skipped: ${SKIP}`);

/** Run openssl in `dir`; throws with its stderr when it fails. */
async function _openssl(dir: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(
      `expected "openssl ${args.join(" ")}" to succeed, it exited with ${out.code}: ` +
        new TextDecoder().decode(out.stderr),
    );
  }
}

/** Paths of the throwaway PKI. */
interface Pki {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

/** A throwaway CA and a server certificate for 127.0.0.1 / localhost it signed (EC P-256). */
async function makePki(): Promise<Pki> {
  const dir = await Deno.makeTempDir({ prefix: "baton-tls-" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await _openssl(
    dir,
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=baton test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  await _openssl(
    dir,
    "req",
    ...ec,
    "-keyout",
    "node.key",
    "-out",
    "node.csr",
    "-subj",
    "/CN=127.0.0.1",
  );
  await Deno.writeTextFile(
    `${dir}/node.ext`,
    [
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth,clientAuth",
      "",
    ].join("\n"),
  );
  await _openssl(
    dir,
    "x509",
    "-req",
    "-in",
    "node.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-set_serial",
    String(1000 + Math.floor(Math.random() * 1e6)),
    "-days",
    "2",
    "-extfile",
    "node.ext",
    "-out",
    "node.pem",
  );
  return { dir, ca: `${dir}/ca.pem`, cert: `${dir}/node.pem`, key: `${dir}/node.key` };
}

/** One movable sample app, checked by process presence. */
function appsYaml(tag: string): (ports: number[]) => string {
  return (ports) =>
    [
      "  web:",
      `    command: ${JSON.stringify(sampleAppCommand(ports[0]!, `web-${tag}`))}`,
      "    check: { type: process }",
      "    stop: { timeout: 3s }",
    ].join("\n");
}

function peer(s: Status, name: string) {
  const p = s.peers.find((x) => x.name === name);
  assert.ok(
    p,
    `expected peer ${name} in the status of ${s.node}, found ${JSON.stringify(s.peers)}`,
  );
  return p;
}

/** Runs `fn` against a two-node https cluster and a baton witness on `witnessScheme`. */
async function withTlsCluster(
  tag: string,
  witnessScheme: "http" | "https",
  fn: (c: LocalCluster, pki: Pki) => Promise<void>,
): Promise<void> {
  const pki = await makePki();
  let c: LocalCluster | null = null;
  try {
    c = await LocalCluster.create({
      nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
      witness: true,
      apps: appsYaml(tag),
      appPorts: 1,
      deadAfter: "3s",
      scheme: "https",
      witnessScheme,
      caFile: pki.ca,
      clusterExtra: `  tls: { cert: "${pki.cert}", key: "${pki.key}", ca: "${pki.ca}" }`,
    });
    c.startWitness();
    await c.startAgent("alpha");
    // beta starts once alpha is active: a slow start of alpha must not make beta active.
    await c.waitRole("alpha", "active", 30_000);
    await c.startAgent("beta");
    await fn(c, pki);
  } catch (err) {
    if (c) {
      for (const n of ["alpha", "beta"]) {
        const log = await Deno.readTextFile(`${c.dir}/${n}.log`).catch(() => "(no log)");
        console.log(`--- ${n}.log (tail)\n${log.split("\n").slice(-30).join("\n")}`);
      }
    }
    throw err;
  } finally {
    await c?.stop();
    await Deno.remove(pki.dir, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name: "cluster over TLS: https peers see each other, CLI status and switchover use the CA",
  ignore: SKIP !== null,
  ...opts,
  fn: () =>
    withTlsCluster("tls1", "http", async (c, pki) => {
      assert.match(c.url("alpha"), /^https:\/\/127\.0\.0\.1:\d+$/);

      // Roles over https heartbeats; each sees the other reachable.
      const a = await c.waitFor("alpha active and seeing beta over https", async () => {
        const s = await c.status("alpha");
        return s?.role === "active" && peer(s, "beta").reachable &&
            peer(s, "beta").role === "standby"
          ? s
          : null;
      }, WAIT_MS);
      assert.equal(peer(a, "beta").role, "standby");
      const b = await c.waitFor("beta standby and seeing alpha over https", async () => {
        const s = await c.status("beta");
        return s?.role === "standby" && peer(s, "alpha").reachable &&
            peer(s, "alpha").role === "active"
          ? s
          : null;
      }, WAIT_MS);
      assert.equal(peer(b, "alpha").role, "active");
      await c.waitRunning("alpha", ["web"], WAIT_MS);

      // Nodes on https still beat a plain-http baton witness.
      const w = await c.waitFor("alpha to reach the http witness", async () => {
        const s = await c.status("alpha") as (Status & { witness: WitnessView }) | null;
        return s?.witness?.reachable ? s.witness : null;
      }, WAIT_MS);
      assert.ok(w.url.startsWith("http://"), `expected an http witness URL, found ${w.url}`);
      assert.equal(w.kind, "baton");

      // Plain HTTP to the TLS port gets no status; https without the CA fails verification;
      // https with the CA answers.
      const plain = await fetch(`${c.url("alpha").replace("https:", "http:")}/v1/status`, {
        signal: AbortSignal.timeout(5_000),
      }).then(async (r) => {
        await r.body?.cancel();
        return `HTTP ${r.status}`;
      }, (err: Error) => `error: ${err.message}`);
      assert.match(
        plain,
        /^error: /,
        `expected plain http to the https port to fail, got ${plain}`,
      );
      await assert.rejects(
        fetch(`${c.url("alpha")}/v1/status`, { signal: AbortSignal.timeout(5_000) }),
        "expected https without the test CA to fail certificate verification",
      );
      const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(pki.ca)] });
      try {
        const res = await fetch(`${c.url("alpha")}/v1/status`, {
          client,
          signal: AbortSignal.timeout(5_000),
        });
        assert.equal(res.status, 200);
        const doc = await res.json() as Status;
        assert.equal(doc.node, "alpha");
        assert.equal(doc.role, "active");
      } finally {
        client.close();
      }

      // The CLI reads cluster.tls.ca.
      const st = await c.cli("beta", "status", "--json");
      assert.equal(st.code, 0, `baton status --json over https: ${st.stdout}${st.stderr}`);
      const doc = JSON.parse(st.stdout) as Status;
      assert.equal(doc.node, "beta");
      assert.equal(doc.role, "standby");

      // …and without the CA the CLI says it is a TLS failure.
      const noCa = `${c.dir}/baton-no-ca.yaml`;
      const yaml = await Deno.readTextFile(c.manifest);
      const stripped = yaml.replace(`, ca: "${pki.ca}"`, "");
      assert.notEqual(stripped, yaml, "expected the manifest to carry the ca path");
      await Deno.writeTextFile(noCa, stripped);
      const bad = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          "--no-prompt",
          new URL("../main.ts", import.meta.url).pathname,
          "status",
          "-m",
          noCa,
          "-n",
          "alpha",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const badErr = new TextDecoder().decode(bad.stderr);
      assert.notEqual(bad.code, 0, "expected status without the CA to fail");
      assert.match(badErr, /TLS failure/, `expected a TLS failure, got: ${badErr}`);

      // Switchover over TLS: beta takes web, alpha steps down.
      const t0 = performance.now();
      const sw = await c.cli("alpha", "switchover");
      assert.equal(sw.code, 0, `switchover over https: ${sw.stdout}${sw.stderr}`);
      assert.match(sw.stdout, /switched over to beta/);
      await c.waitRole("beta", "active", WAIT_MS);
      await c.waitRunning("beta", ["web"], WAIT_MS);
      await c.waitRole("alpha", "standby", WAIT_MS);
      console.log(`switchover over TLS: ${Math.round(performance.now() - t0)} ms`);
    }),
});

Deno.test({
  name: "cluster over TLS: an https witness is beaten and grants the takeover after a host dies",
  ignore: SKIP !== null,
  ...opts,
  fn: () =>
    withTlsCluster("tls2", "https", async (c) => {
      for (const node of ["alpha", "beta"]) {
        const w = await c.waitFor(`${node} to reach the https witness`, async () => {
          const s = await c.status(node) as (Status & { witness: WitnessView }) | null;
          return s?.witness?.reachable ? s.witness : null;
        }, WAIT_MS);
        assert.ok(w.url.startsWith("https://"), `expected an https witness URL, found ${w.url}`);
        assert.equal(w.kind, "baton", `${node}: expected the baton witness to answer its beats`);
      }
      await c.waitRole("alpha", "active", WAIT_MS);
      await c.waitRunning("alpha", ["web"], WAIT_MS);
      await c.waitFor("beta to see alpha active", async () => {
        const s = await c.status("beta");
        return s?.role === "standby" && peer(s, "alpha").role === "active";
      }, WAIT_MS);

      // The whole alpha host dies: beta needs the witness's grant (over https) to take over.
      await c.killHost("alpha");
      const b = await c.waitRunning("beta", ["web"], WAIT_MS);
      assert.equal(b.role, "active");
      const log = await Deno.readTextFile(`${c.dir}/beta.log`);
      assert.match(log, /witness granted/, `expected beta's takeover granted by the witness`);
    }),
});

Deno.test({
  name: "baton run refuses an https node URL when the manifest has no cluster.tls",
  ...opts,
  fn: async () => {
    const c = await LocalCluster.create({
      nodes: [{ name: "alpha", priority: 100 }],
      apps: () => "  {}",
      appPorts: 0,
      scheme: "https",
    });
    try {
      await c.startAgent("alpha");
      const child = c.agents.get("alpha")!;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        child.status,
        new Promise<null>((r) => timer = setTimeout(() => r(null), WAIT_MS)),
      ]);
      clearTimeout(timer);
      assert.ok(status, `expected baton run to exit within ${WAIT_MS} ms, it still runs`);
      c.agents.delete("alpha");
      assert.notEqual(status.code, 0, "expected baton run to fail");
      const log = await c.waitFor("the agent's error in its log", async () => {
        const text = await Deno.readTextFile(`${c.dir}/alpha.log`);
        return text.includes("cluster.tls") ? text : null;
      }, WAIT_MS);
      assert.match(
        log,
        /baton.yaml:\d+:\d+: node "alpha" has an https url but cluster\.tls is not set/,
      );
      assert.equal(await c.status("alpha"), null, "expected nothing to answer on the node URL");
    } finally {
      await c.stop();
    }
  },
});

/** The witness part of the status document. */
interface WitnessView {
  url: string;
  reachable: boolean;
  kind: string | null;
}
