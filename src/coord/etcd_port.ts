/**
 * The etcd calls the coordinator needs, behind one small interface ({@linkcode EtcdPort}), and
 * its real implementation on the maintained `etcd3` client ({@linkcode connectEtcd}). Every call
 * is bounded (a gRPC deadline) and either resolves with what etcd answered or rejects; nothing
 * here decides anything.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { circuitBreaker, ConsecutiveBreaker, handleWhen, retry } from "cockatiel";
import { Etcd3, isRecoverableError } from "etcd3";
import type { EtcdSpec } from "../manifest/coordinator.ts";

/** A key as etcd holds it. */
export interface EtcdKey {
  value: string;
  /** Revision at which the key was created: the epoch of its holder. */
  createRevision: number;
  /** ID of the lease the key is bound to ("0": none). */
  lease: string;
}

/** Outcome of {@linkcode EtcdPort.createIfAbsent}. */
export type CreateResult =
  | { created: true; revision: number }
  | { created: false; holder: EtcdKey | null; revision: number };

/** The etcd operations of the coordinator (the real one, or a test twin). */
export interface EtcdPort {
  /** Grant a lease of `ttlSeconds`; etcd may grant a longer TTL, never a shorter one. */
  grant(ttlSeconds: number): Promise<{ id: string; ttlSeconds: number }>;
  /** Renew a lease once: its TTL after the renewal, 0 if the lease no longer exists. */
  keepAlive(id: string): Promise<number>;
  /** Revoke a lease: etcd deletes every key bound to it. */
  revoke(id: string): Promise<void>;
  /** One transaction: create `key` = `value` bound to `lease` only if `key` does not exist. */
  createIfAbsent(key: string, value: string, lease: string): Promise<CreateResult>;
  /** Read `key` (null: absent) and the store's current revision. */
  read(key: string): Promise<{ holder: EtcdKey | null; revision: number }>;
  /** Close the connections (leases are left as they are). */
  close(): void;
}

function _key(kv: { value: Buffer; create_revision: string; lease: string }): EtcdKey {
  return {
    value: kv.value.toString(),
    createRevision: Number(kv.create_revision),
    lease: String(kv.lease),
  };
}

/**
 * The real port: an `etcd3` client on `spec.endpoints` (TLS files read now), each call bounded
 * to `timeoutMs`. Failed hosts are skipped for a second (circuit breaker), a call is tried on at
 * most two hosts.
 *
 * @example
 * ```ts
 * const port = await connectEtcd({
 *   endpoints: ["http://127.0.0.1:2379"],
 *   prefix: "/baton",
 *   ttlSeconds: 5,
 *   tls: null,
 * }, 500);
 * const { revision } = await port.read("/baton/demo/active");
 * port.close();
 * ```
 */
export async function connectEtcd(spec: EtcdSpec, timeoutMs: number): Promise<EtcdPort> {
  const tls = spec.tls;
  const credentials = tls
    ? {
      rootCertificate: Buffer.from(await Deno.readFile(tls.ca)),
      ...(tls.cert && tls.key
        ? {
          certChain: Buffer.from(await Deno.readFile(tls.cert)),
          privateKey: Buffer.from(await Deno.readFile(tls.key)),
        }
        : {}),
    }
    : undefined;
  const client = new Etcd3({
    hosts: spec.endpoints,
    dialTimeout: timeoutMs,
    ...(credentials ? { credentials } : {}),
    defaultCallOptions: () => ({ deadline: Date.now() + timeoutMs }),
    faultHandling: {
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), {
          halfOpenAfter: 1_000,
          breaker: new ConsecutiveBreaker(3),
        }),
      global: retry(handleWhen(isRecoverableError), { maxAttempts: 2 }),
    },
  });
  return {
    async grant(ttlSeconds) {
      const r = await client.leaseClient.leaseGrant({ TTL: ttlSeconds });
      if (r.error) throw new Error(`lease grant refused: ${r.error}`);
      return { id: String(r.ID), ttlSeconds: Number(r.TTL) };
    },
    async keepAlive(id) {
      const stream = await client.leaseClient.leaseKeepAlive({
        deadline: Date.now() + timeoutMs,
      });
      try {
        const res = await new Promise<{ TTL: string }>((resolve, reject) => {
          stream.on("data", resolve);
          stream.on("error", reject);
          stream.write({ ID: id });
        });
        return Number(res.TTL);
      } finally {
        stream.end();
      }
    },
    async revoke(id) {
      try {
        await client.leaseClient.leaseRevoke({ ID: id });
      } catch (err) {
        // Already gone is what we wanted.
        if (!String((err as Error).message ?? err).includes("lease not found")) throw err;
      }
    },
    async createIfAbsent(key, value, lease) {
      const k = Buffer.from(key);
      const r = await client.kv.txn({
        compare: [{ key: k, target: "Create", result: "Equal", create_revision: 0 }],
        success: [{ request_put: { key: k, value: Buffer.from(value), lease } }],
        failure: [{ request_range: { key: k } }],
      });
      const revision = Number(r.header.revision);
      if (r.succeeded) return { created: true, revision };
      const kv = r.responses[0]?.response_range?.kvs[0];
      return { created: false, holder: kv ? _key(kv) : null, revision };
    },
    async read(key) {
      const r = await client.kv.range({ key: Buffer.from(key) });
      const kv = r.kvs[0];
      return { holder: kv ? _key(kv) : null, revision: Number(r.header.revision) };
    },
    close() {
      client.close();
    },
  };
}
