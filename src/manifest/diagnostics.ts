/**
 * Diagnostics of a manifest load: the {@linkcode Diagnostic} type and its format, the
 * collector that maps manifest paths to YAML line and column, and the report of schema errors
 * (with "did you mean" for unknown keys).
 *
 * @module
 */
import {
  type Document,
  isAlias,
  isMap,
  isNode,
  isScalar,
  isSeq,
  LineCounter,
  type Node as YamlNode,
} from "yaml";
import { knownKeys, parseRawManifest, type RawManifest } from "./schema.ts";
import type { Manifest } from "./types.ts";

/** One problem found in a manifest, at a 1-based line and column of `file`. */
export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  message: string;
  severity: "error" | "warning";
}

/** Result of loading a manifest: the manifest and its warnings, or the errors. */
export type LoadResult =
  | { ok: true; manifest: Manifest; warnings: Diagnostic[] }
  | { ok: false; errors: Diagnostic[]; warnings: Diagnostic[] };

/**
 * Formats a diagnostic the way compilers do: `FILE:LINE:COL: message`, or
 * `FILE:LINE:COL: warning: message`.
 *
 * @example
 * ```ts
 * formatDiagnostic({ file: "baton.yaml", line: 3, col: 5, message: "boom", severity: "error" });
 * // "baton.yaml:3:5: boom"
 * ```
 */
export function formatDiagnostic(d: Diagnostic): string {
  const prefix = `${d.file}:${d.line}:${d.col}: `;
  return d.severity === "warning" ? `${prefix}warning: ${d.message}` : prefix + d.message;
}

type _Path = readonly PropertyKey[];

/** Collects diagnostics, turning manifest paths into positions in the YAML source. */
export class _Diagnostics {
  readonly errors: Diagnostic[] = [];
  readonly warnings: Diagnostic[] = [];
  readonly #seen = new Set<string>();

  constructor(
    readonly file: string,
    readonly doc: Document | null,
    readonly lines: LineCounter,
  ) {}

  /** An error at the value (or key) found at `path`; a missing key points at its parent. */
  error(path: _Path, message: string, target: "value" | "key" = "value"): void {
    this.atOffset(this.#locate(path, target), message, "error");
  }

  /** A warning at the value (or key) found at `path`. */
  warn(path: _Path, message: string, target: "value" | "key" = "value"): void {
    this.atOffset(this.#locate(path, target), message, "warning");
  }

  atOffset(offset: number, message: string, severity: Diagnostic["severity"]): void {
    const { line, col } = this.lines.linePos(offset);
    const key = `${severity}|${line}|${col}|${message}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    const diagnostic = { file: this.file, line, col, message, severity };
    (severity === "error" ? this.errors : this.warnings).push(diagnostic);
  }

  sorted(list: Diagnostic[]): Diagnostic[] {
    return [...list].sort((a, b) => a.line - b.line || a.col - b.col);
  }

  /**
   * Walks the YAML tree along `path`. When the whole path exists, returns the start of the
   * value (or of its key for `target: "key"`); otherwise the start of the deepest node
   * reached, which for a missing key is the mapping that should hold it.
   */
  #locate(path: _Path, target: "value" | "key"): number {
    const doc = this.doc;
    if (doc === null) return 0;
    let here: unknown = doc.contents;
    let key: unknown = null;
    let found = true;
    for (const segment of path) {
      const node = isAlias(here) ? here.resolve(doc) : here;
      if (isMap(node)) {
        const pair = node.items.findLast((p) => _keyText(p.key) === String(segment));
        if (pair === undefined) {
          found = false;
          break;
        }
        key = pair.key;
        // `key:` with nothing after it: point at the key, not at the empty spot after it.
        here = _hasRange(pair.value) && !_isEmptyScalar(pair.value) ? pair.value : pair.key;
      } else if (isSeq(node) && node.items[Number(segment)] !== undefined) {
        key = null;
        here = node.items[Number(segment)];
      } else {
        found = false;
        break;
      }
    }
    const chosen = found && target === "key" && key !== null ? key : here;
    return _hasRange(chosen) ? chosen.range[0] : 0;
  }
}

function _hasRange(node: unknown): node is YamlNode & { range: [number, number, number] } {
  return isNode(node) && Array.isArray(node.range);
}

function _isEmptyScalar(node: YamlNode & { range: [number, number, number] }): boolean {
  return isScalar(node) && node.value === null && node.range[0] === node.range[1];
}

function _keyText(key: unknown): string {
  if (isScalar(key)) return String(key.value);
  return String(key);
}

/** `value` as a plain object, or null. */
export function _record(value: unknown): Record<string, unknown> | null {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

function _levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      const cost = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1;
      row[j] = Math.min(above + 1, (row[j - 1] ?? 0) + 1, diagonal + cost);
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

function _unknownKeyMessage(key: string, path: _Path, allowed: string[]): string {
  const where = path.length === 0 ? "at the top level" : `in ${path.join(".")}`;
  if (allowed.length === 0) return `unknown key "${key}" ${where}`;
  const best = allowed
    .map((name) => ({ name, distance: _levenshtein(key, name) }))
    .sort((a, b) => a.distance - b.distance)[0];
  const guess = best && best.distance <= Math.max(1, Math.floor(key.length / 3))
    ? `; did you mean "${best.name}"?`
    : "";
  return `unknown key "${key}" ${where}${guess} (expected one of: ${allowed.join(", ")})`;
}

/** Reports every schema issue, each at its own node. */
export function _reportSchema(raw: unknown, d: _Diagnostics): RawManifest | null {
  const result = parseRawManifest(raw);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    if (issue.code === "unrecognized_keys") {
      const allowed = knownKeys(raw, issue.path);
      for (const key of issue.keys) {
        d.error([...issue.path, key], _unknownKeyMessage(key, issue.path, allowed), "key");
      }
    } else {
      d.error(issue.path, issue.message);
    }
  }
  return null;
}
