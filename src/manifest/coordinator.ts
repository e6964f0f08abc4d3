/**
 * `cluster.coordinator`: an external coordination engine instead of the baton witness. Today one
 * kind, etcd (`coordinator: { etcd: { endpoints, prefix, ttl, tls } }`): the right to run the
 * movable apps is an etcd key bound to a lease of `ttl` whole seconds (see docs/design.md, "etcd
 * as the coordinator"). The schema (shape and single values) and the checks that relate it to
 * other keys (`witness`, `heartbeat.interval`) live here; `schema.ts` and `load.ts` call them.
 *
 * @example
 * ```ts
 * import { EtcdCoordinatorSchema } from "./coordinator.ts";
 * const spec = EtcdCoordinatorSchema.parse({ endpoints: ["http://127.0.0.1:2379"], ttl: 5 });
 * spec.prefix; // "/baton"
 * ```
 *
 * @module
 */
import { z } from "zod";

/** What `cluster.coordinator.etcd` becomes in the normalized manifest. */
export interface EtcdSpec {
  /** Client URLs of the etcd members (http:// or https://). */
  endpoints: string[];
  /** Key prefix: the key of the movable apps is `<prefix>/<cluster>/active`. */
  prefix: string;
  /** Lease TTL in whole seconds (≥ 2). */
  ttlSeconds: number;
  /** TLS to etcd (absolute paths): CA, and a client certificate and key. Null: plain http. */
  tls: { ca: string; cert: string | null; key: string | null } | null;
}

/** `cluster.coordinator` in the normalized manifest. */
export interface CoordinatorSpec {
  etcd: EtcdSpec;
}

/** Shortest lease TTL accepted, in seconds: etcd checks expiry about every 500 ms. */
export const MIN_ETCD_TTL_SECONDS = 2;

function _found(input: unknown): string {
  if (input === undefined) return "nothing";
  if (typeof input === "string") return JSON.stringify(input);
  if (typeof input === "number") return `the number ${input}`;
  if (Array.isArray(input)) return "a list";
  if (input !== null && typeof input === "object") return "a mapping";
  return String(input);
}

const _endpoint = z.string({ error: (i) => `expected an etcd URL, found ${_found(i.input)}` })
  .superRefine((text, ctx) => {
    let ok = false;
    try {
      const u = new URL(text);
      ok = (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
    } catch { /* not a URL */ }
    if (!ok) {
      ctx.addIssue({
        code: "custom",
        message: `expected an etcd client URL such as "http://127.0.0.1:2379", found ${
          JSON.stringify(text)
        }`,
      });
    }
  });

const _path = (what: string) =>
  z.string({ error: (i) => `expected ${what} (a file path), found ${_found(i.input)}` }).min(1, {
    error: `expected ${what}, found an empty string`,
  });

/** `cluster.coordinator.etcd` as written. */
export const EtcdCoordinatorSchema = z.strictObject({
  endpoints: z.array(_endpoint, {
    error: (i) => `expected a list of etcd client URLs, found ${_found(i.input)}`,
  }).min(1, { error: "expected at least one etcd endpoint, found an empty list" }),
  prefix: z.string({ error: (i) => `expected a key prefix, found ${_found(i.input)}` })
    .regex(/^\/[A-Za-z0-9_./-]*$/, {
      error: (i) =>
        `expected a key prefix starting with "/" (letters, digits, _ . / -), found ${
          _found(i.input)
        }`,
    }).default("/baton"),
  ttl: z.int({
    error: (i) =>
      `expected the lease TTL in whole seconds (an integer ≥ 2), found ${_found(i.input)}`,
  }).min(MIN_ETCD_TTL_SECONDS, {
    error: (i) =>
      `expected a lease TTL of at least ${MIN_ETCD_TTL_SECONDS} whole seconds (etcd checks ` +
      `expiry about every 500 ms), found ${_found(i.input)}`,
  }).max(3600, { error: (i) => `expected a lease TTL of at most 3600 s, found ${_found(i.input)}` })
    .default(5),
  tls: z.strictObject({
    ca: _path("the etcd CA file"),
    cert: _path("a client certificate file").optional(),
    key: _path("a client key file").optional(),
  }, { error: (i) => `expected a mapping { ca, cert, key }, found ${_found(i.input)}` }).optional(),
}, {
  error: (i) => `expected a mapping { endpoints, prefix, ttl, tls }, found ${_found(i.input)}`,
});

/** `cluster.coordinator` as written: exactly one engine (today: etcd). */
export const CoordinatorSchema = z.strictObject({
  etcd: EtcdCoordinatorSchema,
}, {
  error: (i) => `expected a mapping { etcd: { endpoints, ttl, ... } }, found ${_found(i.input)}`,
});

/** A coordinator as the schema outputs it. */
export type RawCoordinator = z.output<typeof CoordinatorSchema>;

/**
 * Checks that relate the coordinator to other keys: one problem per entry, with its path under
 * the manifest root. `fenceWindowMs` is {@linkcode etcdFenceWindowMs} of the result.
 */
export function coordinatorProblems(
  cluster: Record<string, unknown>,
  coordinator: RawCoordinator,
  intervalMs: number,
): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  if (cluster["witness"] !== undefined) {
    problems.push({
      path: ["cluster", "witness"],
      message: "cluster.witness and cluster.coordinator are mutually exclusive: with etcd as " +
        "the coordinator, remove the witness",
    });
  }
  const etcd = coordinator.etcd;
  const window = etcdFenceWindowMs(etcd.ttl * 1000, intervalMs);
  if (window < intervalMs + 100) {
    problems.push({
      path: ["cluster", "coordinator", "etcd", "ttl"],
      message:
        `a lease TTL of ${etcd.ttl} s is too short for heartbeat.interval ${intervalMs} ms: ` +
        `expected ttl − interval − ${ETCD_MARGIN_MS} ms ≥ interval + 100 ms (the renewals need ` +
        `room before the self-fencing deadline)`,
    });
  }
  const tls = etcd.tls;
  if (tls && (tls.cert === undefined) !== (tls.key === undefined)) {
    problems.push({
      path: ["cluster", "coordinator", "etcd", "tls"],
      message: "expected both cert and key for a client certificate, or neither",
    });
  }
  const https = etcd.endpoints.filter((e) => e.startsWith("https:")).length;
  if (https > 0 && https < etcd.endpoints.length) {
    problems.push({
      path: ["cluster", "coordinator", "etcd", "endpoints"],
      message: "expected every etcd endpoint to be https, or none: found a mix",
    });
  }
  if (https > 0 && !tls) {
    problems.push({
      path: ["cluster", "coordinator", "etcd", "endpoints"],
      message: "https etcd endpoints need cluster.coordinator.etcd.tls { ca } to verify them",
    });
  }
  return problems;
}

/**
 * Slack kept between the holder's self-fencing deadline and the earliest moment etcd may expire
 * its key (after the renewal interval): the guard's grace and kill latency (≤ 125 ms measured),
 * the boot clock's granularity, and the event loop.
 */
export const ETCD_MARGIN_MS = 300;

/**
 * How long after the send time of its last answered lease renewal the holder may keep its
 * movable apps without etcd (unless every peer answers): `ttl − renewal interval − margin`. The
 * renewal interval is the heartbeat interval (one renewal per beat).
 *
 * @example
 * ```ts
 * etcdFenceWindowMs(5_000, 200); // 4_500
 * ```
 */
export function etcdFenceWindowMs(ttlMs: number, renewMs: number): number {
  return ttlMs - renewMs - ETCD_MARGIN_MS;
}
