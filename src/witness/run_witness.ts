/**
 * `baton witness`: serve the witness app on an address until SIGTERM/SIGINT.
 *
 * The public port is guarded exactly as a node's is (`peer/conn_guard.ts`): connection caps
 * (total, per address, new per second; the cluster's nodes are never refused by the total
 * cap), a deadline for the request head, an idle deadline, and the 64 KiB pre-auth body cap
 * with its read deadline of `hmacAuth`. The witness app itself listens on a unix socket in a
 * private temporary directory (mode 0700) behind the guard.
 *
 * @module
 */
import { createWitnessApp } from "./witness_app.ts";
import { type Guard, type GuardOptions, serveHttpGuarded } from "../peer/conn_guard.ts";

/** Options of {@linkcode serveWitness}. */
export interface ServeWitnessOptions extends GuardOptions {
  hostname: string;
  /** 0: any free port (see the returned `port`). */
  port: number;
  /** The cluster's shared secret. */
  secret: string;
  /** Claims are leased for this long (the cluster's deadAfter). */
  leaseMs: number;
  /** `host:port` of the witness URL in the manifest: beats must be signed for it. */
  host: string | null;
  /** PEM texts: serve https. */
  tls?: { cert: string; key: string } | null;
}

/** A running witness. */
export interface WitnessServer {
  /** The port it listens on. */
  port: number;
  /** The connection guard in front of it (counters). */
  guard: Guard;
  /** Stop listening, close every connection, remove the socket directory. */
  shutdown(): Promise<void>;
}

/**
 * Serve a witness behind the connection guard until `shutdown()`.
 *
 * @example
 * ```ts
 * const w = await serveWitness({
 *   hostname: "127.0.0.1", port: 0, secret: "s3cret", leaseMs: 1_000, host: null,
 *   trusted: new Set(["10.0.0.1", "10.0.0.2"]),
 * });
 * await w.shutdown();
 * ```
 */
export async function serveWitness(opts: ServeWitnessOptions): Promise<WitnessServer> {
  const app = createWitnessApp({
    secret: opts.secret,
    now: () => performance.now(),
    leaseMs: opts.leaseMs,
    ...(opts.host ? { verifier: { hosts: [opts.host] } } : {}),
  });
  const dir = await Deno.makeTempDir({ prefix: "baton-witness-" });
  try {
    const { hostname, port, secret: _s, leaseMs: _l, host: _h, tls, ...limits } = opts;
    const server = await serveHttpGuarded({
      ...limits,
      hostname,
      port,
      tls: tls ?? null,
      socketPath: `${dir}/witness.sock`,
    }, app.fetch);
    return {
      port: server.addr.port,
      guard: server.guard,
      shutdown: async () => {
        await server.shutdown();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
}

/**
 * Serve a witness on `listen` (`host:port`); claims are leased for `leaseMs`. With `tls`
 * (PEM texts) it serves https, for a manifest whose witness URL is https. `trusted`: the IP
 * addresses of the cluster's nodes, never refused by the connection cap.
 */
export async function runWitness(
  listen: string,
  secret: string,
  leaseMs: number,
  /** `host:port` of the witness URL in the manifest: beats must be signed for it. */
  host: string | null,
  tls: { cert: string; key: string } | null = null,
  trusted: Set<string> = new Set(),
): Promise<void> {
  const i = listen.lastIndexOf(":");
  const hostname = i > 0 ? listen.slice(0, i).replace(/^\[|\]$/g, "") : "0.0.0.0";
  const port = Number(i >= 0 ? listen.slice(i + 1) : listen);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`--listen: expected host:port, got "${listen}"`);
  }
  const server = await serveWitness({ hostname, port, secret, leaseMs, host, tls, trusted });
  const scheme = tls ? "https" : "http";
  console.error(`baton witness listening on ${scheme}://${hostname}:${port} (lease ${leaseMs}ms)`);
  const done = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", () => done.resolve());
  Deno.addSignalListener("SIGINT", () => done.resolve());
  await done.promise;
  await server.shutdown();
}
