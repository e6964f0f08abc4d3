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
  parseDocument,
} from "yaml";
import { dirname, resolve } from "node:path";
import type { z } from "zod";
import { formatDuration } from "./duration.ts";
import {
  findLimitViolations,
  firstAliasOffset,
  MAX_ALIAS_COUNT,
  MAX_MANIFEST_CHARS,
  scanNesting,
} from "./limits.ts";
import {
  AppSchema,
  HeartbeatSchema,
  knownKeys,
  NAME_PATTERN,
  parseRawManifest,
  type RawApp,
  type RawCheck,
  type RawManifest,
  validate,
} from "./schema.ts";
import type { AppSpec, CheckSpec, Manifest, NodeSpec } from "./types.ts";

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

/** Longest node name the peer protocol carries (`peer/messages.ts`). */
const MAX_NODE_NAME = 64;

/** Margin the fencing rule keeps between the active stopping and the standby starting. */
const _FENCE_MARGIN_MS = 100;

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
class _Diagnostics {
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

function _record(value: unknown): Record<string, unknown> | null {
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
function _reportSchema(raw: unknown, d: _Diagnostics): RawManifest | null {
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

/** The URL as compared for duplicates; null when it is not an http(s) URL. */
function _urlIdentity(url: string): string | null {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return null;
    return parsed.href.replace(/\/+$/, "");
  } catch {
    return null;
  }
}

/**
 * Validates one section for the relational checks, ignoring unknown keys (already
 * reported) so that a typo does not hide the other problems of the same section.
 * Returns null when the section has other schema errors.
 */
function _lenient<S extends z.ZodType>(schema: S, value: unknown): z.output<S> | null {
  let current = value;
  for (let round = 0; round < 8; round++) {
    const result = validate(schema, current);
    if (result.success) return result.data;
    const issues = result.error.issues;
    if (!issues.every((i) => i.code === "unrecognized_keys")) return null;
    current = structuredClone(current);
    for (const issue of issues) {
      let holder: unknown = current;
      for (const segment of issue.path) holder = _record(holder)?.[String(segment)];
      const record = _record(holder);
      if (record === null) return null;
      for (const key of issue.keys) delete record[key];
    }
  }
  return null;
}

function _badName(kind: string, name: string): string {
  return `invalid ${kind} name "${name}": expected letters, digits, "_" or "-", ` +
    "starting with a letter or digit";
}

/** Checks that relate several values, and warnings; runs on every part that is well-formed. */
function _reportSemantics(raw: unknown, d: _Diagnostics): void {
  const root = _record(raw);
  if (root === null) return;
  const cluster = _record(root["cluster"]) ?? {};
  const nodes = _record(root["nodes"]) ?? {};
  const apps = _record(root["apps"]) ?? {};
  const nodeNames = Object.keys(nodes);

  const heartbeat = _lenient(HeartbeatSchema, cluster["heartbeat"] ?? {});
  if (heartbeat !== null) {
    const given = _record(cluster["heartbeat"]) ?? {};
    _reportHeartbeat(heartbeat, (key) => key in given, d);
  }

  const urls = new Map<string, string>();
  for (const [name, value] of Object.entries(nodes)) {
    if (!NAME_PATTERN.test(name)) d.error(["nodes", name], _badName("node", name), "key");
    else if (name.length > MAX_NODE_NAME) {
      d.error(
        ["nodes", name],
        `node name "${name.slice(0, 20)}..." is ${name.length} characters: expected at most ` +
          `${MAX_NODE_NAME} (the peer protocol carries node names of at most that length)`,
        "key",
      );
    }
    const url = _record(value)?.["url"];
    const identity = typeof url === "string" ? _urlIdentity(url) : null;
    if (identity === null) continue;
    const first = urls.get(identity);
    if (first === undefined) urls.set(identity, name);
    else {
      d.error(
        ["nodes", name, "url"],
        `node "${name}" has the same url as node "${first}" (${url}): ` +
          "each node needs its own address",
      );
    }
  }

  if (cluster["tls"] == null) {
    const https = (url: unknown) => typeof url === "string" && url.startsWith("https:");
    for (const [name, value] of Object.entries(nodes)) {
      if (https(_record(value)?.["url"])) {
        d.error(
          ["nodes", name, "url"],
          `node "${name}" has an https url but cluster.tls is not set: expected ` +
            "cluster.tls { cert, key, ca } to serve and verify it",
        );
      }
    }
    const witness = cluster["witness"];
    const witnessUrl = typeof witness === "string" ? witness : _record(witness)?.["url"];
    if (https(witnessUrl)) {
      d.error(
        typeof witness === "string" ? ["cluster", "witness"] : ["cluster", "witness", "url"],
        "the witness has an https url but cluster.tls is not set: expected cluster.tls " +
          "{ cert, key, ca }",
      );
    }
  }

  for (const [name, value] of Object.entries(apps)) {
    if (!NAME_PATTERN.test(name)) d.error(["apps", name], _badName("app", name), "key");
    const app = _lenient(AppSchema, value);
    if (app !== null) _reportApp(name, app, nodeNames, d);
  }

  const witness = cluster["witness"];
  if (nodeNames.length === 2 && witness == null) {
    if (cluster["fence"] == null) {
      d.error(
        ["nodes"],
        "two nodes and no cluster.witness nor cluster.fence: a network partition makes both " +
          "nodes active; add a witness both nodes can reach (witness: URL), or write " +
          "witness: none to accept that",
        "key",
      );
    } else {
      d.warn(
        ["nodes"],
        "two nodes and no cluster.witness: a network partition makes both nodes active; " +
          "add a witness both nodes can reach",
        "key",
      );
    }
  } else if (nodeNames.length === 2 && witness === "none") {
    d.warn(
      ["cluster", "witness"],
      "witness: none with two nodes: a network partition makes both nodes active",
    );
  }
  if (_record(witness)?.["kind"] === "http") {
    d.warn(
      ["cluster", "witness", "kind"],
      "a plain HTTP witness only proves reachability: it stops a standby that is itself cut " +
        "off, but cannot arbitrate a partition where both nodes still reach it (use a baton " +
        "witness: witness: URL)",
    );
  }
  if (nodeNames.length > 1 && cluster["secretFile"] == null) {
    d.warn(
      ["cluster"],
      "several nodes and no cluster.secretFile: BATON_SECRET must then be set on every node",
      "key",
    );
  }
}

/**
 * Default `heartbeat.fenceAfter`: the largest value the fencing inequality allows,
 * `deadAfter - interval - 100ms`, so an active rides out as many lost beats as is safe.
 *
 * @example
 * ```ts
 * defaultFenceAfter(200, 1_000); // 700
 * ```
 */
export function defaultFenceAfter(intervalMs: number, deadAfterMs: number): number {
  return deadAfterMs - intervalMs - _FENCE_MARGIN_MS;
}

function _reportHeartbeat(
  hb: { interval: number; deadAfter: number; fenceAfter?: number | undefined },
  given: (key: string) => boolean,
  d: _Diagnostics,
): void {
  const at = (...keys: string[]) => [
    "cluster",
    "heartbeat",
    keys.find(given) ?? keys[keys.length - 1] ?? "",
  ];
  if (hb.interval >= hb.deadAfter) {
    d.error(
      at("interval", "deadAfter"),
      `heartbeat.interval (${formatDuration(hb.interval)}) must be less than ` +
        `heartbeat.deadAfter (${formatDuration(hb.deadAfter)}): a peer is declared dead ` +
        "after deadAfter without heartbeats, so several must fit in it",
    );
    return;
  }
  const fenceAfter = hb.fenceAfter ?? defaultFenceAfter(hb.interval, hb.deadAfter);
  const needed = fenceAfter + hb.interval + _FENCE_MARGIN_MS;
  if (needed > hb.deadAfter || fenceAfter <= 0) {
    const fenceText = hb.fenceAfter === undefined
      ? `${formatDuration(Math.max(0, fenceAfter))}, the default deadAfter - interval - 100ms`
      : formatDuration(fenceAfter);
    d.error(
      at("fenceAfter", "deadAfter", "interval"),
      `heartbeat.fenceAfter (${fenceText}) + interval (${formatDuration(hb.interval)}) + ` +
        `${_FENCE_MARGIN_MS}ms = ${formatDuration(needed)} must be at most deadAfter ` +
        `(${formatDuration(hb.deadAfter)}): an isolated active must stop its apps before ` +
        "the standby may start them; lower fenceAfter or interval, or raise deadAfter",
    );
  }
}

function _reportApp(name: string, app: RawApp, nodeNames: string[], d: _Diagnostics): void {
  const base = ["apps", name];
  const listed = new Set<string>();
  app.nodes?.forEach((node, i) => {
    if (!nodeNames.includes(node)) {
      d.error(
        [...base, "nodes", i],
        `unknown node "${node}" in apps.${name}.nodes: known nodes are ${
          nodeNames.join(", ") || "(none)"
        }`,
      );
    } else if (listed.has(node)) {
      d.error([...base, "nodes", i], `node "${node}" is listed twice in apps.${name}.nodes`);
    }
    listed.add(node);
  });
  if (app.nodes?.length === 1 && app.movable) {
    d.warn(
      [...base, "nodes"],
      `app "${name}" is movable but may only run on node "${app.nodes[0]}": it cannot move ` +
        "on failover; list more nodes or set movable: false",
    );
  }
  const check = app.check;
  if (check.type !== "process" && check.timeout > check.interval) {
    d.warn(
      [...base, "check", "timeout"],
      `check timeout (${formatDuration(check.timeout)}) is longer than its interval ` +
        `(${formatDuration(check.interval)}): a slow check delays the next one`,
    );
  }
  if (check.type === "tcp") {
    if (check.address !== undefined && (check.host !== undefined || check.port !== undefined)) {
      d.error(
        [...base, "check", "address"],
        'a tcp check takes either address: "host:port" or host and port, not both',
      );
    } else if (check.address === undefined && check.port === undefined) {
      d.error(
        [...base, "check", "port"],
        'missing required key "port": a tcp check needs port (and optionally host, default ' +
          '127.0.0.1) or address: "host:port"',
      );
    }
  }
  if (app.restart.limit === 0) {
    d.warn(
      [...base, "restart", "limit"],
      "restart.limit is 0: the first failure escalates (this node stops its movable apps " +
        "and another node takes them) without a restart here",
    );
  }
  if (app.restart.backoffMax < app.restart.backoff) {
    d.error(
      [...base, "restart", "backoffMax"],
      `restart.backoffMax (${formatDuration(app.restart.backoffMax)}) must be at least ` +
        `restart.backoff (${formatDuration(app.restart.backoff)})`,
    );
  }
}

function _canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(_canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${_canonicalJson(record[k])}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

async function _sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function _trimUrl(url: string): string {
  return url.replace(/\/+$/, "");
}

function _check(check: RawCheck): CheckSpec {
  if (check.type === "process") return { type: "process" };
  const timing = {
    intervalMs: check.interval,
    timeoutMs: check.timeout,
    failures: check.failures,
    initialDelayMs: check.initialDelay,
  };
  switch (check.type) {
    case "http":
      return {
        type: "http",
        url: check.url,
        expectStatus: check.expect?.status ?? null,
        expectBody: check.expect?.body ?? null,
        ...timing,
      };
    case "tcp":
      return {
        type: "tcp",
        host: check.address?.host ?? check.host ?? "127.0.0.1",
        // The semantic pass rejects a tcp check with neither port nor address.
        port: check.address?.port ?? check.port ?? 0,
        ...timing,
      };
    case "exec":
      return { type: "exec", command: check.command, ...timing };
  }
}

/** s3proc's keys of an app (pidFile, limits, logs), only those that are set. */
function _processModel(app: RawApp, abs: (p: string) => string): Partial<AppSpec> {
  const out: Partial<AppSpec> = {};
  if (app.pidFile !== undefined) out.pidFile = abs(app.pidFile);
  if (app.limits !== undefined) {
    const l = app.limits;
    out.limits = {
      ...(l.memory !== undefined ? { memoryBytes: l.memory } : {}),
      ...(l.cpu !== undefined ? { cpuWeight: l.cpu } : {}),
      ...(l.tasks !== undefined ? { tasks: l.tasks } : {}),
      ...(l.openFiles !== undefined ? { openFiles: l.openFiles } : {}),
    };
  }
  if (app.logs !== undefined) out.logs = { maxBytes: app.logs.maxSize, keep: app.logs.keep };
  return out;
}

async function _normalize(raw: RawManifest, path: string): Promise<Manifest> {
  const dir = dirname(path);
  const abs = (p: string) => resolve(dir, p);
  const c = raw.cluster;
  const nodes: Record<string, NodeSpec> = {};
  for (const [name, node] of Object.entries(raw.nodes)) {
    nodes[name] = { name, url: _trimUrl(node.url), priority: node.priority };
  }
  const apps: Record<string, AppSpec> = {};
  for (const [name, app] of Object.entries(raw.apps)) {
    const spec: Omit<AppSpec, "hash"> = {
      name,
      command: app.command,
      cwd: app.cwd === undefined ? null : abs(app.cwd),
      env: app.env,
      movable: app.movable,
      nodes: app.nodes ?? null,
      check: _check(app.check),
      restart: {
        limit: app.restart.limit,
        windowMs: app.restart.window,
        backoffMs: app.restart.backoff,
        backoffMaxMs: app.restart.backoffMax,
      },
      stop: { signal: app.stop.signal, timeoutMs: app.stop.timeout },
      ..._processModel(app, abs),
    };
    const { command, cwd, env, check, stop, movable, nodes: where } = spec;
    const { pidFile, limits, logs } = spec;
    const hash = await _sha256Hex(
      _canonicalJson({
        command,
        cwd,
        env,
        check,
        stop,
        movable,
        nodes: where,
        pidFile,
        limits,
        logs,
      }),
    );
    apps[name] = { ...spec, hash };
  }
  const cluster: Manifest["cluster"] = {
    name: c.name,
    secretFile: c.secretFile === undefined ? null : abs(c.secretFile),
    heartbeat: {
      intervalMs: c.heartbeat.interval,
      deadAfterMs: c.heartbeat.deadAfter,
      fenceAfterMs: c.heartbeat.fenceAfter ??
        defaultFenceAfter(c.heartbeat.interval, c.heartbeat.deadAfter),
    },
    witness: c.witness == null ? null : { url: _trimUrl(c.witness.url), kind: c.witness.kind },
    fence: c.fence ?? null,
    failedCooldownMs: c.failedCooldown ?? null,
    ...(c.watchdog && c.watchdog.mode !== "off"
      ? { watchdog: { mode: c.watchdog.mode, device: c.watchdog.device } }
      : {}),
    tls: c.tls === undefined ? null : {
      cert: abs(c.tls.cert),
      key: abs(c.tls.key),
      ca: c.tls.ca === undefined ? null : abs(c.tls.ca),
    },
    notify: (c.notify ?? []).map((n) => ({
      webhook: n.webhook ?? null,
      exec: n.exec ?? null,
      secretFile: n.secretFile === undefined ? null : abs(n.secretFile),
      kinds: n.kinds ?? null,
      level: n.level,
      timeoutMs: n.timeout,
    })),
  };
  const hash = await _sha256Hex(_canonicalJson({ cluster, nodes, apps }));
  return { cluster, nodes, apps, hash, path };
}

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
