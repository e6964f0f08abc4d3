/**
 * The schemas of `nodes:` and `cluster:`: one node (URL, priority, fence), the heartbeat,
 * the witness, TLS, notification sinks, the watchdog and survivor fencing. The floating IPs,
 * the etcd coordinator and the groups have their own modules. Re-exported by `schema.ts`.
 *
 * @example
 * ```ts
 * import { validate } from "./schema.ts";
 * import { HeartbeatSchema } from "./schema_cluster.ts";
 * validate(HeartbeatSchema, { interval: "100ms" }).success; // true
 * ```
 *
 * @module
 */
import { z } from "zod";
import { NOTIFY_KINDS } from "./types.ts";
import { VipListSchema } from "./vip.ts";
import { CoordinatorSchema } from "./coordinator.ts";
import { MaxGroupsSchema } from "./groups.ts";
import {
  _httpUrl,
  _nonEmptyString,
  _wrong,
  CommandSchema,
  describeValue,
  NAME_PATTERN,
  PositiveDurationSchema,
} from "./schema_values.ts";

/** One node under `nodes:`. */
export const NodeSchema = z.strictObject({
  url: _httpUrl("the node's URL"),
  priority: z.int({ error: _wrong("an integer priority") }).default(0),
  // groups across N hosts (issue 14): how many groups this node may run at once.
  maxGroups: MaxGroupsSchema.optional(),
  // Survivor fencing (issue 10 item 3): what the others run against this node.
  fence: CommandSchema.optional(),
  fenceCredentials: _nonEmptyString("a credentials file path").optional(),
}, { error: _wrong("a node mapping { url, priority, maxGroups, fence, fenceCredentials }") });

/** `cluster.fencing`: survivor fencing policy. */
export const FENCING_MODES = ["required", "best-effort", "off"] as const;

/** `cluster.heartbeat`. */
export const HeartbeatSchema = z.strictObject({
  interval: PositiveDurationSchema.default(200),
  deadAfter: PositiveDurationSchema.default(1000),
  fenceAfter: PositiveDurationSchema.optional(),
}, { error: _wrong("a mapping { interval, deadAfter, fenceAfter }") });

/** The kinds of witness: a baton witness, or any HTTP server (reachability only). */
export const WITNESS_KINDS = ["baton", "http"] as const;

/**
 * `cluster.witness`: `URL` (a baton witness), `{ url, kind: http }` (any HTTP server, which
 * only proves reachability), or `none` (no witness, said explicitly). Output: null for none.
 */
const _WitnessSchema = z.preprocess(
  (value) => (value === "none" ? null : typeof value === "string" ? { url: value } : value),
  z.strictObject({
    url: _httpUrl("the witness URL"),
    kind: z.enum(WITNESS_KINDS, {
      error: _wrong('a witness kind: "baton" (default) or "http" (reachability only)'),
    }).default("baton"),
  }, {
    error: _wrong(
      'a witness URL such as "http://127.0.0.1:7400", { url: ..., kind: http }, or none',
    ),
  }).nullable(),
);

const _TlsSchema = z.strictObject({
  cert: _nonEmptyString("a certificate file path"),
  key: _nonEmptyString("a key file path"),
  ca: _nonEmptyString("a CA file path").optional(),
}, { error: _wrong("a mapping { cert, key, ca }") });

/** One sink under `cluster.notify`: exactly one of `webhook` and `exec`, plus filters. */
export const NotifySinkSchema = z.strictObject({
  webhook: _httpUrl("the webhook URL").optional(),
  exec: CommandSchema.optional(),
  secretFile: _nonEmptyString("a secret file path").optional(),
  kinds: z.array(
    z.enum(NOTIFY_KINDS, { error: _wrong(`one of ${NOTIFY_KINDS.join(", ")}`) }),
    { error: _wrong("a list of event kinds such as [restart, takeover]") },
  ).min(1, { error: "expected at least one kind, found an empty list" }).optional(),
  level: z.enum(["info", "warn", "error"], { error: _wrong("info, warn or error") })
    .default("info"),
  timeout: PositiveDurationSchema.default(5000),
}, { error: _wrong("a sink mapping { webhook: URL } or { exec: [cmd, args...] }") })
  .superRefine((sink, ctx) => {
    if ((sink.webhook === undefined) === (sink.exec === undefined)) {
      ctx.addIssue({
        code: "custom",
        message: "expected exactly one of webhook or exec in a notify sink, found " +
          (sink.webhook === undefined ? "neither" : "both"),
        input: sink,
      });
    } else if (sink.exec !== undefined && sink.secretFile !== undefined) {
      ctx.addIssue({
        code: "custom",
        message: "secretFile signs webhook bodies: expected it with webhook, found it with exec",
        path: ["secretFile"],
        input: sink.secretFile,
      });
    }
  });
/** `cluster.watchdog`: a Linux watchdog device the agent pets (like Patroni's `watchdog`). */
const _WatchdogSchema = z.strictObject({
  mode: z.enum(["off", "automatic", "required"], {
    error: (iss) => `expected off, automatic or required, found ${describeValue(iss.input)}`,
  }).default("off"),
  device: _nonEmptyString("a device path").default("/dev/watchdog"),
}, { error: _wrong("a mapping { mode, device }") });

/** `cluster:`. A missing or empty `cluster:` gets every default. */
export const ClusterSchema = z.strictObject({
  name: _nonEmptyString("a cluster name").regex(NAME_PATTERN, {
    error: (iss) =>
      `expected a name of letters, digits, "_" or "-" starting with a letter or digit, found ${
        describeValue(iss.input)
      }`,
  }).default("baton"),
  secretFile: _nonEmptyString("a secret file path").optional(),
  heartbeat: HeartbeatSchema.prefault({}),
  witness: _WitnessSchema.optional(),
  fence: CommandSchema.optional(),
  failedCooldown: PositiveDurationSchema.optional(),
  tls: _TlsSchema.optional(),
  notify: z.array(NotifySinkSchema, { error: _wrong("a list of sinks") }).optional(),
  watchdog: _WatchdogSchema.optional(),
  // Floating IPs (issue 13, item 1): see vip.ts.
  vip: VipListSchema.optional(),
  // etcd coordinator (issue 14): instead of witness; see coordinator.ts.
  coordinator: CoordinatorSchema.optional(),
  // Survivor fencing (issue 10 item 3): policy and timings of nodes.X.fence.
  fencing: z.enum(FENCING_MODES, {
    error: (iss) => `expected required, best-effort or off, found ${describeValue(iss.input)}`,
  }).optional(),
  fenceTimeout: PositiveDurationSchema.default(30_000),
  fenceDelay: PositiveDurationSchema.default(5_000),
  fenceRetry: PositiveDurationSchema.default(5_000),
}, { error: _wrong("a cluster mapping { name, heartbeat, ... }") });

/** `nodes:`: at least one node. */
export const NodesSchema = z
  .record(z.string(), NodeSchema, {
    error: _wrong("a mapping of node name to { url, priority }"),
  })
  .refine((nodes) => Object.keys(nodes).length > 0, {
    error: "expected at least one node under nodes, found none",
  });
