/**
 * The baton witness (`baton witness`): a third vote for partitions. Nodes post authenticated
 * beats saying their role and epoch; anyone can read which node most recently claimed to be
 * active, and how long ago.
 *
 * Routes:
 * - `POST /v1/witness/beat` (signed, see `peer/auth.ts`) body `{ node, role, epoch }` →
 *   `{ ok: true, witness: "baton", nodes, active }`.
 * - `GET /v1/witness` (open, read-only) → `{ witness: "baton", nodes, active }`.
 * - `GET /` → `{ witness: "baton" }`, so a node can tell a baton witness from any HTTP URL.
 *
 * Ages come from the injected monotonic clock `now`; the request signatures are checked
 * against the wall clock (they carry unix time).
 *
 * @example
 * ```ts
 * const secret = "s3cret"; // the cluster's shared secret (peer/secret.ts loads it)
 * const app = createWitnessApp({ secret, now: () => performance.now(), leaseMs: 3_000 });
 * Deno.serve({ port: 7950 }, app.fetch);
 * ```
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import type { Role } from "../core/types.ts";
import { WitnessArbiter } from "./arbiter.ts";
import { MAX_EPOCH } from "../core/node_state.ts";
import {
  type AuthVariables,
  hmacAuth,
  RequestVerifier,
  type VerifierOptions,
} from "../peer/auth.ts";

/** Path nodes post their beats to. */
export const WITNESS_BEAT_PATH = "/v1/witness/beat";
/** Path of the read-only view. */
export const WITNESS_VIEW_PATH = "/v1/witness";
/** Path of the claim a node makes before it takes over without seeing its peer. */
export const WITNESS_CLAIM_PATH = "/v1/witness/claim";
/** Most distinct nodes remembered; beyond that the one silent for longest is forgotten. */
export const MAX_WITNESS_NODES = 256;

const ROLES = ["standby", "active", "failed"] as const satisfies readonly Role[];

/** Shape of a beat body. */
export const WitnessBeatSchema = z.strictObject({
  node: z.string().min(1).max(128),
  role: z.enum(ROLES),
  epoch: z.number().int().nonnegative().max(MAX_EPOCH),
  /** The longest deadAfter in force at the node: its lease here lasts at least this long. */
  deadAfterMs: z.number().int().positive().max(2 ** 31 - 1).optional(),
});

/** A beat a node posts to the witness. */
export type WitnessBeat = z.infer<typeof WitnessBeatSchema>;

/** What the witness knows of one node. */
export interface WitnessNodeView {
  role: Role;
  epoch: number;
  /** Milliseconds since the node's last beat. */
  ageMs: number;
}

/** The node the witness believes active: highest epoch among active claims, then freshest. */
export interface WitnessActive {
  node: string;
  epoch: number;
  ageMs: number;
}

/** Body of `GET /v1/witness`; the beat reply adds `ok: true`. */
export interface WitnessView {
  witness: "baton";
  nodes: Record<string, WitnessNodeView>;
  active: WitnessActive | null;
  /** Highest epoch granted or heard since the witness started. */
  maxEpoch: number;
}

/** Options of {@linkcode createWitnessApp}. */
export interface WitnessAppOptions {
  /** The cluster's shared secret. */
  secret: string;
  /** Monotonic clock in milliseconds, used for ages. */
  now: () => number;
  /** A claim is refused while another node beat as active less than this long ago. */
  leaseMs: number;
  /** Passed to the {@linkcode RequestVerifier} (skew, wall clock); tests only. */
  verifier?: VerifierOptions;
}

function _describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "body"}: ${i.message}`)
    .join("; ");
}

/**
 * Builds the witness app. State lives in memory only: a restarted witness knows nothing until
 * the nodes beat again, which they do every heartbeat.
 *
 * @example
 * ```ts
 * let t = 0;
 * const secret = "s3cret"; // the cluster's shared secret (peer/secret.ts loads it)
 * const app = createWitnessApp({ secret, now: () => t, leaseMs: 3_000 });
 * const view = await (await app.request("/v1/witness")).json();
 * ```
 */
export function createWitnessApp(opts: WitnessAppOptions): Hono<{ Variables: AuthVariables }> {
  const arbiter = new WitnessArbiter(opts.leaseMs, opts.now());
  const verifier = new RequestVerifier(opts.secret, opts.verifier ?? {});

  const view = (): WitnessView => {
    const now = opts.now();
    return {
      witness: "baton",
      nodes: arbiter.nodes(now),
      active: arbiter.active(now),
      maxEpoch: arbiter.maxEpoch,
    };
  };

  const app = new Hono<{ Variables: AuthVariables }>();

  app.get("/", (c) => c.json({ witness: "baton" }));

  app.get(WITNESS_VIEW_PATH, (c) => c.json(view()));

  /** Parse and check a signed beat or claim; a Response is an error to return as is. */
  const readBeat = (c: Context<{ Variables: AuthVariables }>): WitnessBeat | Response => {
    let json: unknown;
    try {
      json = JSON.parse(c.get("rawBody"));
    } catch (err) {
      return c.json(
        { error: "bad request", reason: `expected a JSON body, got: ${(err as Error).message}` },
        400,
      );
    }
    const parsed = WitnessBeatSchema.safeParse(json);
    if (!parsed.success) {
      return c.json({ error: "bad request", reason: _describeIssues(parsed.error) }, 400);
    }
    const beat = parsed.data;
    const peer = c.get("peer");
    if (beat.node !== peer) {
      return c.json({
        error: "bad request",
        reason: `expected node ${JSON.stringify(peer)} (the signer), got ${
          JSON.stringify(beat.node)
        }`,
      }, 400);
    }
    return beat;
  };

  app.post(WITNESS_BEAT_PATH, hmacAuth(verifier), (c) => {
    const beat = readBeat(c);
    if (beat instanceof Response) return beat;
    arbiter.beat(beat.node, beat.role, beat.epoch, opts.now(), beat.deadAfterMs);
    if (arbiter.size > MAX_WITNESS_NODES) arbiter.forgetOldest();
    return c.json({ ok: true as const, ...view() });
  });

  // A node that cannot be sure no other node is active asks here before it takes the role;
  // the arbiter grants one claim per epoch and none while another active is fresh.
  app.post(WITNESS_CLAIM_PATH, hmacAuth(verifier), (c) => {
    const beat = readBeat(c);
    if (beat instanceof Response) return beat;
    if (beat.role !== "active") {
      return c.json({
        error: "bad request",
        reason: `a claim has role "active", got "${beat.role}"`,
      }, 400);
    }
    const decision = arbiter.claim(beat.node, beat.epoch, opts.now(), beat.deadAfterMs);
    if (arbiter.size > MAX_WITNESS_NODES) arbiter.forgetOldest();
    return c.json({ ...view(), ...decision });
  });

  app.notFound((c) => c.json({ error: "not found", path: c.req.path }, 404));
  app.onError((err, c) => c.json({ error: "internal error", reason: err.message }, 500));

  return app;
}
