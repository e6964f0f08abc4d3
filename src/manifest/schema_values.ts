/**
 * The value schemas every section of the manifest is built from: durations (as milliseconds),
 * non-empty strings, http(s) URLs, command lines, names; and the error-message helpers
 * (`describeValue`, `_wrong`) the section schemas share. Re-exported by `schema.ts`.
 *
 * @example
 * ```ts
 * import { PositiveDurationSchema } from "./schema_values.ts";
 * PositiveDurationSchema.parse("1m30s"); // 90000
 * ```
 *
 * @module
 */
import { z } from "zod";
import { parseDuration } from "./duration.ts";

/** Names of nodes, apps and the cluster: a letter or digit, then letters, digits, `_`, `-`. */
export const NAME_PATTERN: RegExp = /^[a-z0-9][a-z0-9_-]*$/i;

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
export function _wrong(expected: string, hint?: (input: unknown) => string) {
  return (issue: { input?: unknown }) => {
    if (issue.input === undefined) return undefined;
    const extra = hint?.(issue.input) ?? "";
    return `expected ${expected}, found ${describeValue(issue.input)}${extra}`;
  };
}

/** A hint for a number or boolean where a string belongs: quote it. */
export function _quoteHint(input: unknown): string {
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
export function _nonEmptyString(what: string) {
  return z
    .string({ error: _wrong(`${what} (a string)`, _quoteHint) })
    .min(1, { error: `expected ${what}, found an empty string` });
}

/** An http:// or https:// URL. */
export function _httpUrl(what: string) {
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
