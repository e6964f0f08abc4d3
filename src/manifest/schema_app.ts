/**
 * The schemas of `apps:`: one app (command, environment, user, nodes, dependencies), its
 * `check:` (process, http, tcp, exec), `restart:` and `stop:`. Re-exported by `schema.ts`.
 *
 * @example
 * ```ts
 * import { validate } from "./schema.ts";
 * import { AppSchema } from "./schema_app.ts";
 * validate(AppSchema, { command: ["sleep", "infinity"] }).success; // true
 * ```
 *
 * @module
 */
import { z } from "zod";
import {
  _httpUrl,
  _nonEmptyString,
  _quoteHint,
  _wrong,
  CommandSchema,
  describeValue,
  DurationSchema,
  PositiveDurationSchema,
} from "./schema_values.ts";

/** Signal names accepted by `stop.signal`. */
export const KNOWN_SIGNALS = [
  "SIGTERM",
  "SIGINT",
  "SIGQUIT",
  "SIGHUP",
  "SIGKILL",
  "SIGUSR1",
  "SIGUSR2",
] as const;

/** The check types an app may declare. */
export const CHECK_TYPES = ["process", "http", "tcp", "exec"] as const;

const _PortSchema = z
  .int({ error: _wrong("a port number (an integer 1..65535)") })
  .min(1, { error: (iss) => `expected a port in 1..65535, found ${describeValue(iss.input)}` })
  .max(65535, { error: (iss) => `expected a port in 1..65535, found ${describeValue(iss.input)}` });

/** `host:port` or `[v6addr]:port`, parsed into its parts. */
const _AddressSchema = z.string({ error: _wrong('an address "host:port"') }).transform(
  (text, ctx) => {
    const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d+)$/.exec(text);
    const port = match ? Number(match[3]) : Number.NaN;
    const host = match ? (match[1] ?? match[2] ?? "") : "";
    if (!match || host === "" || !(port >= 1 && port <= 65535)) {
      ctx.addIssue({
        code: "custom",
        message: `expected an address "host:port" with a port in 1..65535, found "${text}"`,
        input: text,
      });
      return z.NEVER;
    }
    return { host, port };
  },
);

const _timing = {
  interval: PositiveDurationSchema.default(1000),
  timeout: PositiveDurationSchema.default(1000),
  failures: z
    .int({ error: _wrong("a whole number of consecutive failures") })
    .min(1, { error: (iss) => `expected at least 1 failure, found ${describeValue(iss.input)}` })
    .default(3),
  initialDelay: DurationSchema.default(0),
};

const _StatusSchema = z
  .int({ error: _wrong("an HTTP status code (an integer 100..599)") })
  .min(100, { error: (iss) => `expected a status in 100..599, found ${describeValue(iss.input)}` })
  .max(599, { error: (iss) => `expected a status in 100..599, found ${describeValue(iss.input)}` });

/** `expect:` of an http check; `status` may be one code or a list. */
const _ExpectSchema = z.strictObject({
  status: z
    .preprocess(
      (value) => (typeof value === "number" ? [value] : value),
      z.array(_StatusSchema, { error: _wrong("a status code or a list of status codes") }).min(1, {
        error: "expected at least one status code, found an empty list",
      }),
    )
    .optional(),
  body: z.string({ error: _wrong("a substring the body must contain", _quoteHint) }).optional(),
}, { error: _wrong("a mapping { status, body }") });

/** The `check:` of an app, one schema per `type`. */
export const CheckSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("process") }),
  z.strictObject({
    type: z.literal("http"),
    url: _httpUrl("the URL to check"),
    expect: _ExpectSchema.optional(),
    ..._timing,
  }),
  z.strictObject({
    type: z.literal("tcp"),
    host: _nonEmptyString("a host name or address").optional(),
    port: _PortSchema.optional(),
    address: _AddressSchema.optional(),
    ..._timing,
  }),
  z.strictObject({
    type: z.literal("exec"),
    command: CommandSchema,
    ..._timing,
  }),
], {
  error: (iss) => {
    const input = iss.input;
    if (input === undefined) return undefined;
    if (input === null || typeof input !== "object" || Array.isArray(input)) {
      return `expected a check mapping such as { type: http, url: ... }, found ${
        describeValue(input)
      }`;
    }
    const type = (input as Record<string, unknown>)["type"];
    const choices = CHECK_TYPES.map((t) => `"${t}"`).join(", ");
    if (type === undefined) return `missing required key "type": expected one of ${choices}`;
    return `expected a check type (${choices}), found ${describeValue(type)}`;
  },
});

const _SignalSchema = z.string({ error: _wrong("a signal name such as SIGTERM") }).superRefine(
  (name, ctx) => {
    if ((KNOWN_SIGNALS as readonly string[]).includes(name)) return;
    const upper = name.toUpperCase();
    const guess = [upper, `SIG${upper}`].find((g) =>
      (KNOWN_SIGNALS as readonly string[]).includes(g)
    );
    ctx.addIssue({
      code: "custom",
      message: `expected a signal name (${KNOWN_SIGNALS.join(", ")}), found "${name}"${
        guess ? `; did you mean ${guess}?` : ""
      }`,
      input: name,
    });
  },
).transform((name) => name as Deno.Signal);

/** `restart:` of an app. */
export const RestartSchema = z.strictObject({
  limit: z
    .int({ error: _wrong("a whole number of restarts") })
    .min(0, { error: (iss) => `expected 0 or more restarts, found ${describeValue(iss.input)}` })
    .default(1),
  window: PositiveDurationSchema.default(600_000),
  backoff: PositiveDurationSchema.default(1000),
  backoffMax: PositiveDurationSchema.default(60_000),
}, { error: _wrong("a mapping { limit, window, backoff, backoffMax }") });

/** `stop:` of an app. */
export const StopSchema = z.strictObject({
  signal: _SignalSchema.default("SIGTERM"),
  timeout: PositiveDurationSchema.default(10_000),
}, { error: _wrong("a mapping { signal, timeout }") });

const _EnvValueSchema = z
  .union([z.string(), z.number(), z.boolean()], { error: _wrong("a string value") })
  .transform((value) => String(value));

/** A node or app name as a list element (`apps.X.nodes`). */
const _NameRefSchema = z.string({ error: _wrong("a node name", _quoteHint) });

// --- s3trust (issue 11 #4): the user an app runs as, and the agent variables it inherits. ---
/** `user:` / `group:`: a name, or a numeric id (0 .. 2^32 − 2). */
const _IdSchema = z.union([
  z.int().min(0).max(4_294_967_294),
  _nonEmptyString("a user or group name").refine((v) => !/[:\s]/.test(v), {
    error: "expected a user or group name without ':' or spaces",
  }),
], { error: _wrong("a user or group name, or a numeric id") });
/** Variables never passed to an app, whatever `inheritEnv` says: they lead to the secret. */
export const NEVER_INHERITED = ["BATON_SECRET", "CREDENTIALS_DIRECTORY"];
const _InheritEnvSchema = z.array(
  z.string({ error: _wrong("a variable name") })
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "expected a variable name such as JAVA_HOME" })
    .refine((v) => !NEVER_INHERITED.includes(v), {
      error: "the cluster secret (BATON_SECRET, CREDENTIALS_DIRECTORY) is never passed to apps",
    }),
  { error: _wrong("a list of variable names such as [JAVA_HOME]") },
);
const _trustKeys = {
  user: _IdSchema.optional(),
  group: _IdSchema.optional(),
  inheritEnv: _InheritEnvSchema.optional(),
};
// --- s3proc (issue 13): forking daemons, resource limits, log rotation -----------------------
/** A size: bytes as a number, or a string with a binary unit (`512K`, `64M`, `1G`, `64MiB`). */
const _SizeSchema = z.union([z.int(), z.string()], {
  error: _wrong('a size such as "64M" or "1G"'),
}).transform((value, ctx) => {
  const m = typeof value === "number"
    ? [String(value), String(value), ""]
    : /^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(value);
  const bytes = m ? Number(m[1]) * 1024 ** " KMGT".indexOf((m[2] || " ").toUpperCase()) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    ctx.addIssue({
      code: "custom",
      message: `expected a size greater than zero such as "64M", found ${describeValue(value)}`,
      input: value,
    });
    return z.NEVER;
  }
  return bytes;
});
const _count = (what: string, max = 2 ** 31 - 1) =>
  z.int({ error: _wrong(what) }).min(1, { error: `expected ${what} of at least 1` })
    .max(max, { error: `expected ${what} of at most ${max}` });
/** `limits:` of an app (src/supervisor/limits.ts): cgroup v2, else v1, else prlimit. */
export const LimitsSchema = z.strictObject({
  memory: _SizeSchema.optional(),
  /** Relative CPU weight, 1..10000 (100 = an ordinary process), as cgroup v2 `cpu.weight`. */
  cpu: _count("a CPU weight (1..10000, 100 = normal)", 10_000).optional(),
  tasks: _count("a number of tasks").optional(),
  openFiles: _count("a number of open files").optional(),
}, { error: _wrong("a mapping { memory, cpu, tasks, openFiles }") });
/** `logs:` of an app (src/logs/): size-based rotation by the per-host log writer. */
export const LogsSchema = z.strictObject({
  maxSize: _SizeSchema.default(10 * 1024 * 1024),
  keep: _count("a number of rotated files to keep", 1000).default(5),
}, { error: _wrong("a mapping { maxSize, keep }") });
/** The s3proc keys of an app, spread into {@linkcode AppSchema}. */
const _PROCESS_MODEL_KEYS = {
  pidFile: _nonEmptyString("a pid file path").optional(),
  limits: LimitsSchema.optional(),
  logs: LogsSchema.optional(),
};

/** One app under `apps:`. */
export const AppSchema = z.strictObject({
  ..._trustKeys,
  command: CommandSchema,
  cwd: _nonEmptyString("a working directory").optional(),
  env: z
    .record(z.string(), _EnvValueSchema, { error: _wrong("a mapping of NAME: value") })
    .default({}),
  movable: z.boolean({ error: _wrong("true or false") }).default(true),
  nodes: z
    .array(_NameRefSchema, { error: _wrong("a list of node names such as [alpha, beta]") })
    .min(1, { error: "expected at least one node name, found an empty list" })
    .optional(),
  check: CheckSchema.default({ type: "process" }),
  restart: RestartSchema.prefault({}),
  stop: StopSchema.prefault({}),
  // Start order and readiness (issue #13 item 2): validated across apps in `depends.ts`.
  dependsOn: z
    .array(z.string({ error: _wrong("an app name", _quoteHint) }), {
      error: _wrong("a list of app names such as [db, cache]"),
    })
    .default([]),
  readyTimeout: PositiveDurationSchema.default(60_000),
  ..._PROCESS_MODEL_KEYS,
}, { error: _wrong("an app mapping with at least a command") });

/** `apps:`: may be empty. */
export const AppsSchema = z.record(z.string(), AppSchema, {
  error: _wrong("a mapping of app name to app"),
});

/** One app as the schemas output it. */
export type RawApp = z.output<typeof AppSchema>;
/** One check as the schemas output it. */
export type RawCheck = z.output<typeof CheckSchema>;
