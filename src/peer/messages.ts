/**
 * Bodies of the peer protocol, validated with zod on both ends: a malformed body is a 400
 * with a reason on the server, and a malformed reply is a failed exchange on the client.
 *
 * @module
 */
import { z } from "zod";
import { MAX_EPOCH } from "../core/node_state.ts";

/** Longest node name on the wire (the manifest refuses longer ones). */
export const MAX_NAME_LENGTH = 64;
const name = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i).max(MAX_NAME_LENGTH);
/** Epochs are integers up to `MAX_EPOCH`, so the next one is still exact. */
const epoch = z.number().int().nonnegative().max(MAX_EPOCH);

/** A node's view of itself, exchanged in heartbeats. */
export const NodeInfoSchema = z.strictObject({
  node: name,
  role: z.enum(["standby", "active", "failed"]),
  roleSeq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  hears: z.array(name).max(64),
  handoverTo: name.optional(),
  epoch,
  priority: z.number().int(),
  maintenance: z.boolean(),
  manifestHash: z.string().max(128),
  incarnation: z.string().regex(/^[0-9a-z-]{1,64}$/).optional(),
  settings: z.strictObject({
    hash: z.string().max(64),
    keys: z.record(z.string().max(64), z.string().max(512)).refine(
      (k) => Object.keys(k).length <= 32,
      { message: "at most 32 keys" },
    ),
    deadAfterMs: z.number().int().positive().max(2 ** 31 - 1),
    fenceAfterMs: z.number().int().positive().max(2 ** 31 - 1),
  }).optional(),
  seen: z.record(name, z.string().max(64)).refine((s) => Object.keys(s).length <= 64, {
    message: "at most 64 peers",
  }).optional(),
});

/** `POST /v1/takeover/prepare` and `/v1/takeover/commit`. */
export const TakeoverSchema = z.strictObject({
  epoch,
  reason: z.string().max(2000),
});

/** `POST /v1/switchover`. */
export const SwitchoverSchema = z.strictObject({ to: name.nullable().optional() });

/** `POST /v1/maintenance`. */
export const MaintenanceSchema = z.strictObject({ on: z.boolean() });

/** `POST /v1/fence-ok`: the operator confirms `node` is powered off (survivor fencing). */
export const FenceOkSchema = z.strictObject({ node: name });

/** `POST /v1/clear` and `/v1/reload` take an empty object. */
export const EmptySchema = z.strictObject({});

/** What a baton witness answers to a beat or a claim. */
export const WitnessReplySchema = z.object({
  witness: z.literal("baton"),
  ok: z.boolean().optional(),
  granted: z.boolean().optional(),
  reason: z.string().optional(),
  active: z.object({ node: name, epoch, ageMs: z.number().nonnegative() }).nullable(),
  /** Highest epoch the witness granted or heard (absent from older witnesses). */
  maxEpoch: epoch.optional(),
});

/** A zod error as one short line: `path: message; path: message`. */
export function describeZodError(error: z.ZodError): string {
  return error.issues.slice(0, 5).map((i) =>
    `${i.path.length ? i.path.join(".") : "body"}: ${i.message}`
  ).join("; ");
}
