/**
 * Loads a manifest: YAML text in, a normalized {@linkcode Manifest} out, or every problem
 * found as a {@linkcode Diagnostic} pointing at the line and column of the offending YAML.
 *
 * Three passes: YAML syntax (all errors of the `yaml` library), the zod schemas of
 * `schema.ts` (shape and single values), then checks that relate values (heartbeat timing,
 * node references, duplicate URLs) and warnings for legal but risky setups.
 *
 * @example
 * ```ts
 * import { formatDiagnostic, loadManifestFile } from "./load.ts";
 * const result = await loadManifestFile("baton.yaml");
 * if (!result.ok) for (const d of result.errors) console.error(formatDiagnostic(d));
 * ```
 *
 * The passes live in `diagnostics.ts` (positions, schema errors), `semantics.ts` (checks that
 * relate values) and `normalize.ts` (the normalized manifest); this module runs them and
 * re-exports their public names.
 *
 * @module
 */
import { LineCounter, parseDocument } from "yaml";
import { resolve } from "node:path";
import {
  findLimitViolations,
  firstAliasOffset,
  MAX_ALIAS_COUNT,
  MAX_MANIFEST_CHARS,
  scanNesting,
} from "./limits.ts";
import type { Manifest } from "./types.ts";
import { _Diagnostics, _record, _reportSchema } from "./diagnostics.ts";
import type { LoadResult } from "./diagnostics.ts";
import { _reportSemantics } from "./semantics.ts";
import { _normalize } from "./normalize.ts";

export { formatDiagnostic } from "./diagnostics.ts";
export type { Diagnostic, LoadResult } from "./diagnostics.ts";
export { defaultFenceAfter } from "./semantics.ts";

/**
 * Parses and validates manifest text. `file` names the manifest in diagnostics and is the
 * base for relative paths (`cwd`, `secretFile`, `tls`), which come out absolute. Every
 * problem is reported, each at its own line and column.
 *
 * @example
 * ```ts
 * const result = await parseManifest("nodes:\n  alpha: { url: http://127.0.0.1:7401 }\n", "b.yaml");
 * if (result.ok) console.log(result.manifest.cluster.heartbeat.intervalMs); // 200
 * ```
 */
export async function parseManifest(text: string, file: string): Promise<LoadResult> {
  if (text.length > MAX_MANIFEST_CHARS) {
    return _failAt(
      file,
      `manifest of ${text.length} characters: expected at most ${MAX_MANIFEST_CHARS}`,
    );
  }
  const nesting = scanNesting(text);
  if (nesting !== null) {
    const lines = new LineCounter();
    lines.addNewLine(0);
    for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", at + 1)) {
      lines.addNewLine(at + 1);
    }
    const d = new _Diagnostics(file, null, lines);
    d.atOffset(nesting.offset, nesting.message, "error");
    return { ok: false, errors: d.errors, warnings: [] };
  }
  try {
    return await _parseManifest(text, file);
  } catch (error) {
    // Nothing in a manifest may crash the caller (an agent reloading it keeps running).
    return _failAt(file, `cannot load manifest: ${error instanceof Error ? error.message : error}`);
  }
}

function _failAt(file: string, message: string): LoadResult {
  return {
    ok: false,
    errors: [{ file, line: 1, col: 1, message, severity: "error" }],
    warnings: [],
  };
}

async function _parseManifest(text: string, file: string): Promise<LoadResult> {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    prettyErrors: false,
    keepSourceTokens: true,
    merge: true,
  });
  const d = new _Diagnostics(file, doc, lines);
  for (const warning of doc.warnings) d.atOffset(warning.pos[0], warning.message, "warning");
  for (const error of doc.errors) {
    const message = error.code === "DUPLICATE_KEY"
      ? `duplicate key: ${_duplicateKeyText(text, error.pos)} is already defined in this mapping`
      : error.message.startsWith("Source contains multiple documents")
      ? "YAML syntax error: a manifest is one YAML document, found several (separated by ---)"
      : `YAML syntax error: ${error.message}`;
    d.atOffset(error.pos[0], message, "error");
  }
  const fatalSyntax = doc.errors.some((e) => e.code !== "DUPLICATE_KEY");
  if (fatalSyntax) return { ok: false, errors: d.sorted(d.errors), warnings: d.sorted(d.warnings) };

  const limits = findLimitViolations(doc);
  for (const v of limits) d.atOffset(v.offset, v.message, "error");
  if (limits.length > 0) {
    return { ok: false, errors: d.sorted(d.errors), warnings: d.sorted(d.warnings) };
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    // An alias bomb or a merge key that includes itself: the yaml library gives up.
    const why = error instanceof Error ? error.message : String(error);
    d.atOffset(
      firstAliasOffset(doc),
      `aliases expand too far (more than ${MAX_ALIAS_COUNT} expansions, or an alias that ` +
        `includes itself): ${why}`,
      "error",
    );
    return { ok: false, errors: d.sorted(d.errors), warnings: d.sorted(d.warnings) };
  }
  // Top-level `x-...` keys are free for YAML anchors (`x-defaults: &defaults ...`).
  const top = _record(raw);
  for (const key of Object.keys(top ?? {})) if (key.startsWith("x-")) delete top?.[key];
  const manifest = _reportSchema(raw, d);
  _reportSemantics(raw, d);
  if (manifest === null || d.errors.length > 0) {
    return { ok: false, errors: d.sorted(d.errors), warnings: d.sorted(d.warnings) };
  }
  return {
    ok: true,
    manifest: await _normalize(manifest, resolve(file)),
    warnings: d.sorted(d.warnings),
  };
}

function _duplicateKeyText(text: string, pos: [number, number]): string {
  const key = /^(?:"[^"\n]*"|'[^'\n]*'|[^:\s,{}[\]]+)/.exec(text.slice(pos[0]))?.[0];
  return key === undefined
    ? "this key"
    : key.startsWith('"') || key.startsWith("'")
    ? key
    : `"${key}"`;
}

/**
 * Reads and parses a manifest file. A missing or unreadable file gives one error at 1:1.
 *
 * @example
 * ```ts
 * const result = await loadManifestFile("/etc/baton/baton.yaml");
 * ```
 */
export async function loadManifestFile(file: string): Promise<LoadResult> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.IsADirectory
      ? "it is a directory, expected a YAML file"
      : (error as Error).message;
    const message = `cannot read manifest "${file}": ${reason}`;
    return {
      ok: false,
      errors: [{ file, line: 1, col: 1, message, severity: "error" }],
      warnings: [],
    };
  }
  return await parseManifest(text, file);
}

/**
 * Decides which node of the manifest this process is: the `--node` flag, else the
 * environment (`BATON_NODE`), else the host name (full, or the part before the first dot).
 * A single-node manifest needs none of them. Errors list the known node names.
 *
 * @example
 * ```ts
 * import type { Manifest } from "./types.ts";
 * declare const manifest: Manifest;
 * resolveNodeName(manifest, undefined, undefined, "alpha.example.org"); // { ok: true, node: "alpha" }
 * ```
 */
export function resolveNodeName(
  manifest: Manifest,
  flag: string | undefined,
  env: string | undefined,
  hostname: string,
): { ok: true; node: string } | { ok: false; error: string } {
  const names = Object.keys(manifest.nodes);
  const known = names.length > 0 ? names.join(", ") : "(none)";
  for (const [given, source] of [[flag, "--node"], [env, "BATON_NODE"]] as const) {
    if (given === undefined || given === "") continue;
    if (names.includes(given)) return { ok: true, node: given };
    return {
      ok: false,
      error: `unknown node "${given}" (from ${source}): expected one of ${known}`,
    };
  }
  const short = hostname.split(".")[0] ?? hostname;
  const match = names.find((n) => n === hostname) ??
    names.find((n) => n === short) ??
    names.find((n) => n.toLowerCase() === hostname.toLowerCase()) ??
    names.find((n) => n.toLowerCase() === short.toLowerCase());
  if (match !== undefined) return { ok: true, node: match };
  if (names.length === 1 && names[0] !== undefined) return { ok: true, node: names[0] };
  return {
    ok: false,
    error: `cannot tell which node this is: the host name "${hostname}" is none of the ` +
      `nodes (${known}); pass --node NAME or set BATON_NODE`,
  };
}
