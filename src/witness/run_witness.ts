/**
 * `baton witness`: serve the witness app on an address until SIGTERM/SIGINT.
 *
 * @module
 */
import { createWitnessApp } from "./witness_app.ts";

/**
 * Serve a witness on `listen` (`host:port`); claims are leased for `leaseMs`. With `tls`
 * (PEM texts) it serves https, for a manifest whose witness URL is https.
 */
export async function runWitness(
  listen: string,
  secret: string,
  leaseMs: number,
  /** `host:port` of the witness URL in the manifest: beats must be signed for it. */
  host: string | null,
  tls: { cert: string; key: string } | null = null,
): Promise<void> {
  const i = listen.lastIndexOf(":");
  const hostname = i > 0 ? listen.slice(0, i).replace(/^\[|\]$/g, "") : "0.0.0.0";
  const port = Number(i >= 0 ? listen.slice(i + 1) : listen);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`--listen: expected host:port, got "${listen}"`);
  }
  const app = createWitnessApp({
    secret,
    now: () => performance.now(),
    leaseMs,
    ...(host ? { verifier: { hosts: [host] } } : {}),
  });
  const server = Deno.serve({ hostname, port, onListen: () => {}, ...(tls ?? {}) }, app.fetch);
  const scheme = tls ? "https" : "http";
  console.error(`baton witness listening on ${scheme}://${hostname}:${port} (lease ${leaseMs}ms)`);
  const done = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", () => done.resolve());
  Deno.addSignalListener("SIGINT", () => done.resolve());
  await done.promise;
  await server.shutdown();
}
