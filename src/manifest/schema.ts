/**
 * The zod schemas of the manifest as the user writes it (YAML keys, duration strings).
 * They check shape and each value on its own: types, unknown keys, duration syntax, URL
 * schemes, ports, signal names. Checks that relate several values (heartbeat timing, node
 * references, duplicate URLs) and the normalized manifest live in `load.ts`.
 *
 * Durations come out of these schemas as milliseconds; defaults are filled in.
 *
 * The schemas are split by section (each module re-exported here, so importers use this one):
 * `schema_values.ts` (durations, URLs, commands, error-message helpers), `schema_app.ts`
 * (`apps:`, checks, restart, stop), `schema_cluster.ts` (`nodes:`, `cluster:`).
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
import { GroupsSchema } from "./groups.ts";
import { _wrong, describeValue } from "./schema_values.ts";
import { AppsSchema } from "./schema_app.ts";
import { ClusterSchema, NodesSchema } from "./schema_cluster.ts";

export {
  CommandSchema,
  describeValue,
  DurationSchema,
  MAX_DURATION_MS,
  NAME_PATTERN,
  PositiveDurationSchema,
} from "./schema_values.ts";
export {
  AppSchema,
  AppsSchema,
  CHECK_TYPES,
  CheckSchema,
  KNOWN_SIGNALS,
  NEVER_INHERITED,
  type RawApp,
  type RawCheck,
  RestartSchema,
  StopSchema,
} from "./schema_app.ts";
export {
  ClusterSchema,
  FENCING_MODES,
  HeartbeatSchema,
  NodeSchema,
  NodesSchema,
  NotifySinkSchema,
  WITNESS_KINDS,
} from "./schema_cluster.ts";

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
