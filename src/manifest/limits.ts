/**
 * Bounds on what a manifest may be, checked on the parsed YAML tree before it is turned into
 * values: a hostile or broken file (an alias bomb, a merge key that includes itself, nesting
 * thousands of levels deep, a string of megabytes) becomes an error at its line and column
 * instead of a crash or a stall of the agent that reloads it.
 *
 * @example
 * ```ts
 * import { parseDocument } from "yaml";
 * const doc = parseDocument("a: [[[[1]]]]");
 * findLimitViolations(doc); // [] (well inside the limits)
 * ```
 *
 * @module
 */
import { type Document, isAlias, isMap, isNode, isPair, isScalar, isSeq } from "yaml";

/** Largest manifest file accepted, in UTF-16 code units of its text (about bytes). */
export const MAX_MANIFEST_CHARS = 16 * 1024 * 1024;
/** Deepest nesting of mappings and sequences accepted (a real manifest needs about 6). */
export const MAX_DEPTH = 64;
/** Longest single string value or key accepted. */
export const MAX_STRING_CHARS = 1024 * 1024;
/** Most alias expansions `toJS` may perform (the `yaml` library's guard against bombs). */
export const MAX_ALIAS_COUNT = 1000;

/**
 * Nesting the text scan refuses before the YAML parser runs: the parser recurses, and on
 * thousands of levels it spends seconds before giving up, stalling an agent that reloads.
 */
export const MAX_SCAN_DEPTH = 256;

/** A limit broken at `offset` of the source text. */
export interface LimitViolation {
  offset: number;
  message: string;
}

/**
 * Walks the document (iteratively, so depth itself cannot overflow the stack) and returns the
 * first violation of each kind: nesting deeper than {@linkcode MAX_DEPTH}, a scalar longer than
 * {@linkcode MAX_STRING_CHARS}.
 *
 * @example
 * ```ts
 * import { parseDocument } from "yaml";
 * findLimitViolations(parseDocument("x: " + "[".repeat(100) + "]".repeat(100)));
 * // [{ offset: 67, message: "nesting deeper than 64 levels ..." }]
 * ```
 */
export function findLimitViolations(doc: Document): LimitViolation[] {
  const found: LimitViolation[] = [];
  let deep = false;
  let long = false;
  const stack: { node: unknown; depth: number }[] = [{ node: doc.contents, depth: 0 }];
  while (stack.length > 0 && !(deep && long)) {
    const { node, depth } = stack.pop()!;
    if (isPair(node)) {
      stack.push({ node: node.value, depth }, { node: node.key, depth });
      continue;
    }
    if (!isNode(node)) continue;
    const offset = node.range?.[0] ?? 0;
    if (isScalar(node)) {
      const text = node.source ?? (typeof node.value === "string" ? node.value : "");
      if (!long && typeof text === "string" && text.length > MAX_STRING_CHARS) {
        long = true;
        found.push({
          offset,
          message: `string of ${text.length} characters: expected at most ${MAX_STRING_CHARS}`,
        });
      }
      continue;
    }
    if (isMap(node) || isSeq(node)) {
      if (depth + 1 > MAX_DEPTH) {
        if (!deep) {
          deep = true;
          found.push({
            offset,
            message: `nesting deeper than ${MAX_DEPTH} levels: a manifest needs a handful`,
          });
        }
        continue;
      }
      for (let i = node.items.length - 1; i >= 0; i--) {
        stack.push({ node: node.items[i], depth: depth + 1 });
      }
    }
  }
  found.sort((a, b) => a.offset - b.offset);
  return found;
}

/**
 * Where to point an error that came out of alias expansion: the first alias in the document
 * (0 if there is none).
 *
 * @example
 * ```ts
 * import { parseDocument } from "yaml";
 * firstAliasOffset(parseDocument("a: &a 1\nb: *a\n")); // 11
 * ```
 */
export function firstAliasOffset(doc: Document): number {
  const stack: unknown[] = [doc.contents];
  let best: number | null = null;
  while (stack.length > 0) {
    const node = stack.pop();
    if (isPair(node)) {
      stack.push(node.key, node.value);
    } else if (isAlias(node)) {
      const at = node.range?.[0] ?? 0;
      best = best === null ? at : Math.min(best, at);
    } else if (isMap(node) || isSeq(node)) {
      for (const item of node.items) stack.push(item);
    }
  }
  return best ?? 0;
}

/**
 * A cheap scan of the raw text for nesting the parser would choke on: flow brackets (`[`, `{`)
 * open outside quotes and comments, indentation, or compact `- - -` sequences deeper than
 * {@linkcode MAX_SCAN_DEPTH}. Returns the first such place, or null. It over-approximates
 * nothing a real manifest uses; the exact check is {@linkcode findLimitViolations}.
 *
 * @example
 * ```ts
 * scanNesting("a: " + "[".repeat(300)); // { offset: 259, message: "..." }
 * scanNesting("a: [1, [2]]"); // null
 * ```
 */
export function scanNesting(text: string): LimitViolation | null {
  const message = `nesting deeper than ${MAX_SCAN_DEPTH} levels: a manifest needs a handful`;
  let flow = 0;
  let quote: "'" | '"' | null = null;
  let lineStart = true;
  let indent = 0;
  let dashes = 0;
  let prev = "\n";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\n") {
      lineStart = true;
      indent = 0;
      dashes = 0;
      prev = c;
      continue;
    }
    if (quote !== null) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = null;
      prev = c;
      continue;
    }
    if (lineStart) {
      if (c === " ") {
        if (++indent > MAX_SCAN_DEPTH * 2) return { offset: i, message };
        prev = c;
        continue;
      }
      if ((c === "-" || c === "?") && (text[i + 1] === " " || text[i + 1] === "\t")) {
        if (++dashes > MAX_SCAN_DEPTH) return { offset: i, message };
        i++;
        prev = " ";
        continue;
      }
      lineStart = false;
    }
    const boundary = prev === " " || prev === "\t" || prev === "\n" || prev === "[" ||
      prev === "{" || prev === "," || prev === ":";
    if (c === "#" && (prev === " " || prev === "\t" || prev === "\n")) {
      const end = text.indexOf("\n", i);
      i = (end < 0 ? text.length : end) - 1;
      continue;
    }
    if ((c === "'" || c === '"') && boundary) quote = c;
    else if (c === "[" || c === "{") {
      if (++flow > MAX_SCAN_DEPTH) return { offset: i, message };
    } else if ((c === "]" || c === "}") && flow > 0) flow--;
    prev = c;
  }
  return null;
}
