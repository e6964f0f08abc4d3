/**
 * The zod schemas of the manifest as the user writes it (YAML keys, duration strings).
 * They check shape and each value on its own: types, unknown keys, duration syntax, URL
 * schemes, ports, signal names. Checks that relate several values (heartbeat timing, node
 * references, duplicate URLs) and the normalized manifest live in `load.ts`.
 *
 * Durations come out of these schemas as milliseconds; defaults are filled in.
 *
 * @example
 * ```ts
 * import { parseRawManifest } from "./schema.ts";
 * const result = parseRawManifest({ nodes: { alpha: { url: "http://127.0.0.1:7401" } } });
 * if (result.success) console.log(result.data.cluster.heartbeat.interval); // 200
 * ```
 *
 * @module
 */
import { z } from "zod";
import { parseDuration } from "./duration.ts";
import { NOTIFY_KINDS } from "./types.ts";
import { VipListSchema } from "./vip.ts";
import { CoordinatorSchema } from "./coordinator.ts";
import { GroupsSchema, MaxGroupsSchema } from "./groups.ts";

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

/** Names of nodes, apps and the cluster: a letter or digit, then letters, digits, `_`, `-`. */
export const NAME_PATTERN: RegExp = /^[a-z0-9][a-z0-9_-]*$/i;

/** The check types an app may declare. */
export const CHECK_TYPES = ["process", "http", "tcp", "exec"] as const;

/**
 * Describes a YAML value for an error message: `"abc"`, `the number 5`, `a list`, `a mapping`,
 * `nothing`.
 *
 * @example
 * ```ts
 * describeValue(5); // "the number 5"
 * ```
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "nothing (null)";
  if (typeof value === "string") {
    return value.length > 60 ? `${JSON.stringify(value.slice(0, 57))}...` : JSON.stringify(value);
  }
  if (typeof value === "number") return `the number ${value}`;
  if (typeof value === "boolean") return `the boolean ${value}`;
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}

/** Error function for a schema: a custom message for wrong values, the default when missing. */
function _wrong(expected: string, hint?: (input: unknown) => string) {
  return (issue: { input?: unknown }) => {
    if (issue.input === undefined) return undefined;
    const extra = hint?.(issue.input) ?? "";
    return `expected ${expected}, found ${describeValue(issue.input)}${extra}`;
  };
}

function _quoteHint(input: unknown): string {
  return typeof input === "number" || typeof input === "boolean"
    ? ` (quote it: "${String(input)}")`
    : "";
}

/** Longest duration a timer can wait (2^31 − 1 ms); Deno fires longer ones at once. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** A duration string; `allowZero` decides whether `0s` is accepted. Output: milliseconds. */
function _duration(allowZero: boolean) {
  const expected = 'a duration string such as "500ms", "10s" or "1m30s"';
  return z
    .string({
      error: _wrong(
        expected,
        (input) =>
          typeof input === "number"
            ? ` (a bare number has no unit: write e.g. "${input}ms" or "${input}s")`
            : "",
      ),
    })
    .transform((text, ctx) => {
      let ms: number;
      try {
        ms = parseDuration(text);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: (error as Error).message, input: text });
        return z.NEVER;
      }
      if (ms > MAX_DURATION_MS) {
        ctx.addIssue({
          code: "custom",
          message: `expected a duration of at most ${MAX_DURATION_MS}ms (about 24.8 days: ` +
            `longer timers fire at once), found "${text}"`,
          input: text,
        });
        return z.NEVER;
      }
      if (!allowZero && ms <= 0) {
        ctx.addIssue({
          code: "custom",
          message: `expected a duration greater than zero, found "${text}"`,
          input: text,
        });
        return z.NEVER;
      }
      return ms;
    });
}

/** A duration > 0, in milliseconds. */
export const PositiveDurationSchema = _duration(false);
/** A duration ≥ 0, in milliseconds. */
export const DurationSchema = _duration(true);

/** A string that must not be empty. */
function _nonEmptyString(what: string) {
  return z
    .string({ error: _wrong(`${what} (a string)`, _quoteHint) })
    .min(1, { error: `expected ${what}, found an empty string` });
}

/** An http:// or https:// URL. */
function _httpUrl(what: string) {
  return z.string({ error: _wrong(`${what} (an http:// or https:// URL)`) }).superRefine(
    (text, ctx) => {
      let url: URL | null = null;
      try {
        url = new URL(text);
      } catch {
        // reported below
      }
      if (url === null) {
        ctx.addIssue({
          code: "custom",
          message: `expected ${what} (a URL such as "http://127.0.0.1:7401"), found "${text}"`,
          input: text,
        });
      } else if (url.protocol !== "http:" && url.protocol !== "https:") {
        ctx.addIssue({
          code: "custom",
          message: `expected ${what} starting with http:// or https://, found "${text}"`,
          input: text,
        });
      }
    },
  );
}

/** A command line as a list of strings; the program must not be empty. */
export const CommandSchema = z
  .array(z.string({ error: _wrong("a string", _quoteHint) }), {
    error: _wrong(
      "a command as a list of strings such as [python3, -m, http.server]",
      (input) =>
        typeof input === "string"
          ? ` (write it as a list: [${input.split(/\s+/).join(", ")}])`
          : "",
    ),
  })
  .min(1, {
    error:
      "command must not be empty: expected at least the program to run, e.g. [sleep, infinity]",
  })
  .superRefine((command, ctx) => {
    if (command[0] === "") {
      ctx.addIssue({
        code: "custom",
        message: "expected the program to run as the first element, found an empty string",
        path: [0],
        input: "",
      });
    }
  });

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

/** `apps:`: may be empty. */
export const AppsSchema = z.record(z.string(), AppSchema, {
  error: _wrong("a mapping of app name to app"),
});

/** The whole manifest as written. `cluster:` and `apps:` may be missing or empty. */
export const ManifestSchema = z.strictObject({
  cluster: z.preprocess((v) => (v === null ? undefined : v), ClusterSchema.prefault({})),
  nodes: NodesSchema,
  apps: z.preprocess((v) => (v === null ? undefined : v), AppsSchema.default({})),
  // groups across N hosts (issue 14): see groups.ts.
  groups: GroupsSchema.optional(),
}, { error: _wrong("a manifest mapping with keys cluster, nodes and apps") });

/** The manifest as the schemas output it: user keys, durations in milliseconds. */
export type RawManifest = z.output<typeof ManifestSchema>;
/** One app as the schemas output it. */
export type RawApp = z.output<typeof AppSchema>;
/** One check as the schemas output it. */
export type RawCheck = z.output<typeof CheckSchema>;

const _EXPECTED_NAMES: Record<string, string> = {
  object: "a mapping",
  record: "a mapping",
  map: "a mapping",
  array: "a list",
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
};

/**
 * The error map used when validating: a message that says what was expected and what was
 * found, and `missing required key "K"` for a missing key.
 */
export function manifestErrorMap(issue: z.core.$ZodRawIssue): string {
  const last = issue.path?.[issue.path.length - 1];
  switch (issue.code) {
    case "invalid_type": {
      if (issue.input === undefined) {
        const parent = issue.path?.slice(0, -1).join(".") ?? "";
        return `missing required key "${String(last)}"${parent === "" ? "" : ` in ${parent}`}`;
      }
      const expected = _EXPECTED_NAMES[issue.expected] ?? issue.expected;
      return `expected ${expected}, found ${describeValue(issue.input)}`;
    }
    case "invalid_value":
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(" or ")}, found ${
        describeValue(issue.input)
      }`;
    case "too_small":
      return issue.origin === "array"
        ? `expected at least ${issue.minimum} element(s), found ${describeValue(issue.input)}`
        : `expected at least ${issue.minimum}, found ${describeValue(issue.input)}`;
    case "too_big":
      return `expected at most ${issue.maximum}, found ${describeValue(issue.input)}`;
    case "unrecognized_keys":
      return `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
    default:
      return `invalid value ${describeValue(issue.input)}`;
  }
}

/**
 * Validates one part of the manifest (or the whole of it) with {@linkcode manifestErrorMap}.
 *
 * @example
 * ```ts
 * const result = validate(NodeSchema, { url: "ftp://x" });
 * if (!result.success) console.log(result.error.issues[0]?.message);
 * ```
 */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
): z.ZodSafeParseResult<z.output<S>> {
  return schema.safeParse(value, { error: manifestErrorMap, reportInput: true });
}

/**
 * Validates a whole manifest as parsed from YAML.
 *
 * @example
 * ```ts
 * parseRawManifest({ nodes: {} }).success; // false: at least one node is required
 * ```
 */
export function parseRawManifest(value: unknown): z.ZodSafeParseResult<RawManifest> {
  return validate(ManifestSchema, value);
}

type _Def = {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  valueType?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  discriminator?: string;
  values?: unknown[];
};

function _def(schema: z.ZodType): _Def {
  return (schema as unknown as { _zod: { def: _Def } })._zod.def;
}

/** Strips wrappers (optional, default, preprocess...) down to the schema that has a shape. */
function _unwrap(schema: z.ZodType, value: unknown): z.ZodType {
  for (let i = 0; i < 20; i++) {
    const def = _def(schema);
    if (def.innerType) schema = def.innerType;
    else if (def.type === "pipe" && def.in && def.out) {
      schema = _def(def.in).type === "transform" ? def.out : def.in;
    } else if (def.type === "union" && def.options) {
      const key = def.discriminator;
      const wanted = key !== undefined && value !== null && typeof value === "object"
        ? (value as Record<string, unknown>)[key]
        : undefined;
      const option = def.options.find((o) => {
        const literal = key === undefined ? undefined : _def(o).shape?.[key];
        return literal !== undefined && (_def(literal).values ?? []).includes(wanted);
      });
      if (!option) return schema;
      schema = option;
    } else return schema;
  }
  return schema;
}

/**
 * The keys the schema allows in the mapping at `path` of `root` (the raw manifest value),
 * for "did you mean" hints; empty when the path leads to no fixed-key mapping.
 *
 * @example
 * ```ts
 * knownKeys({ cluster: {} }, ["cluster", "heartbeat"]); // ["interval", "deadAfter", "fenceAfter"]
 * ```
 */
export function knownKeys(root: unknown, path: readonly PropertyKey[]): string[] {
  let value = root;
  let schema = _unwrap(ManifestSchema, value);
  for (const segment of path) {
    const def = _def(schema);
    const next = def.shape?.[String(segment)] ?? def.valueType ?? def.element;
    if (!next) return [];
    value = value !== null && typeof value === "object"
      ? (value as Record<PropertyKey, unknown>)[segment]
      : undefined;
    schema = _unwrap(next, value);
  }
  return Object.keys(_def(schema).shape ?? {});
}
