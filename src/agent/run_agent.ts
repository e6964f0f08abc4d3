/**
 * `baton run`: wire the real drivers (processes, checks, HTTP peers, state directory) to an
 * {@linkcode Agent}, serve its API on the node's URL, and handle SIGHUP/SIGTERM.
 *
 * @module
 */
import { Agent } from "./agent.ts";
import { formatDiagnostic, loadManifestFile } from "../manifest/load.ts";
import type { Manifest } from "../manifest/types.ts";
import type { StartMode } from "../core/types.ts";
import { PeerClient } from "../peer/client.ts";
import { RequestVerifier } from "../peer/auth.ts";
import { createPeerApi } from "../peer/peer_api.ts";
import { serveHttpGuarded, trustedAddresses } from "../peer/conn_guard.ts";
import { RealProcessRunner } from "../supervisor/real_runner.ts";

/** Options of `baton run`, resolved by the CLI. */
export interface RunOptions {
  manifest: Manifest;
  manifestPath: string;
  node: string;
  stateDir: string;
  mode: StartMode;
  secret: string;
}

/** Run the agent until SIGTERM/SIGINT. Apps keep running after the agent exits. */
export async function runAgent(opts: RunOptions): Promise<number> {
  const { manifest, node } = opts;
  const self = manifest.nodes[node];
  if (!self) throw new Error(`node ${node} not in manifest`);
  const tls = manifest.cluster.tls;
  const url = new URL(self.url);
  if (url.protocol === "https:" && !tls) {
    throw new Error(
      `node ${node}: url ${self.url} is https: expected cluster.tls { cert, key } to serve it, ` +
        "found no cluster.tls",
    );
  }
  // Read before anything starts: a missing certificate must not leave apps started by an agent
  // that cannot serve its API.
  const serveTls = tls && url.protocol === "https:"
    ? { cert: await Deno.readTextFile(tls.cert), key: await Deno.readTextFile(tls.key) }
    : {};
  const caCert = tls?.ca ? await Deno.readTextFile(tls.ca) : null;
  const client = new PeerClient({
    node,
    secret: opts.secret,
    timeoutMs: Math.max(manifest.cluster.heartbeat.intervalMs, 100),
    caCert,
  });
  const agent = new Agent({
    node,
    manifest,
    mode: opts.mode,
    stateDir: opts.stateDir,
    runner: new RealProcessRunner(),
    transport: client,
    loadManifest: async () => {
      const r = await loadManifestFile(opts.manifestPath);
      return r.ok
        ? { ok: true, manifest: r.manifest, warnings: r.warnings.map(formatDiagnostic) }
        : { ok: false, errors: r.errors.map(formatDiagnostic) };
    },
  });
  await agent.start();

  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  // Only requests signed for this node's own URL: one captured on its way to a peer cannot be
  // replayed here.
  const verifier = new RequestVerifier(opts.secret, { hosts: [url.host] });
  const api = createPeerApi(agent, verifier);
  // The public port is guarded (connection caps, header and idle deadlines) in front of the
  // API on a unix socket in the state directory: see conn_guard.ts.
  const server = await serveHttpGuarded({
    hostname,
    port,
    tls: serveTls.cert !== undefined && serveTls.key !== undefined
      ? { cert: serveTls.cert, key: serveTls.key }
      : null,
    socketPath: `${opts.stateDir}/api.sock`,
    trusted: trustedAddresses([
      ...Object.values(manifest.nodes).filter((n) => n.name !== node).map((n) => n.url),
      ...(manifest.cluster.witness ? [manifest.cluster.witness.url] : []),
    ]),
  }, api.fetch);
  console.error(
    `baton: node ${node} listening on ${self.url}, state in ${opts.stateDir}, mode ${opts.mode}`,
  );

  const done = Promise.withResolvers<number>();
  const stop = (sig: string) => {
    console.error(`baton: ${sig}: agent stopping; apps keep running and are adopted on restart`);
    done.resolve(0);
  };
  const onHup = () => {
    agent.reload().then((r) => {
      if (!r.ok) console.error(`baton: reload refused:\n${r.errors.join("\n")}`);
    });
  };
  Deno.addSignalListener("SIGHUP", onHup);
  const onTerm = () => stop("SIGTERM");
  const onInt = () => stop("SIGINT");
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  const code = await done.promise;
  Deno.removeSignalListener("SIGHUP", onHup);
  Deno.removeSignalListener("SIGTERM", onTerm);
  Deno.removeSignalListener("SIGINT", onInt);
  await agent.shutdown();
  await server.shutdown();
  client.close();
  return code;
}
