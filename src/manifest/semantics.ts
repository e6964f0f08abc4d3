/**
 * Checks of a manifest that relate several values (heartbeat timing, node references,
 * duplicate URLs, per-app rules) and warnings for legal but risky setups.
 *
 * @module
 */
import type { z } from "zod";
import { dependsProblems } from "./depends.ts";
import { formatDuration } from "./duration.ts";
import { MAX_ID, resolveRunAs, systemUserDb } from "./app_user.ts";
import { AppSchema, HeartbeatSchema, NAME_PATTERN, type RawApp, validate } from "./schema.ts";
import { _Diagnostics, _record } from "./diagnostics.ts";
import { coordinatorProblems, CoordinatorSchema } from "./coordinator.ts";
import { groupProblems, GroupsSchema } from "./groups.ts";

/** Longest node name the peer protocol carries (`peer/messages.ts`). */
const MAX_NODE_NAME = 64;

/** Margin the fencing rule keeps between the active stopping and the standby starting. */
const _FENCE_MARGIN_MS = 100;

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

/** Survivor fencing: with `required` in force, every node of a cluster needs a fence command. */
function _reportFencing(
  cluster: Record<string, unknown>,
  nodes: Record<string, unknown>,
  d: _Diagnostics,
): void {
  const fenced = Object.keys(nodes).filter((n) => _record(nodes[n])?.["fence"] != null);
  const mode = cluster["fencing"] ?? (fenced.length > 0 ? "required" : "off");
  if (mode !== "required" || Object.keys(nodes).length < 2) return;
  for (const name of Object.keys(nodes)) {
    if (fenced.includes(name)) continue;
    d.error(
      ["nodes", name],
      `node "${name}" has no fence command but fencing is required` +
        (cluster["fencing"] == null ? " (the default once a node has one)" : "") +
        `: a takeover from it would wait for "baton fence-ok"; add nodes.${name}.fence, or ` +
        "set cluster.fencing: best-effort",
      "key",
    );
  }
}

function _badName(kind: string, name: string): string {
  return `invalid ${kind} name "${name}": expected letters, digits, "_" or "-", ` +
    "starting with a letter or digit";
}

/** Checks that relate several values, and warnings; runs on every part that is well-formed. */
export function _reportSemantics(raw: unknown, d: _Diagnostics): void {
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
    _reportRunAs(name, _record(value), d);
  }
  for (const p of dependsProblems(apps, nodeNames)) d.error(p.path, p.message);

  // groups across N hosts (issue 14): apps and nodes they name must exist.
  const groups = root["groups"];
  const parsedGroups = groups == null ? null : _lenient(GroupsSchema, groups);
  if (parsedGroups !== null) {
    const movable: Record<string, boolean> = {};
    for (const [name, value] of Object.entries(apps)) {
      movable[name] = _lenient(AppSchema, value)?.movable ?? true;
    }
    for (const p of groupProblems(parsedGroups, movable, nodeNames)) d.error(p.path, p.message);
  }
  _reportFencing(cluster, nodes, d);
  const witness = cluster["witness"];
  // etcd coordinator (issue 14): its own checks; it arbitrates instead of a witness.
  const coordinator = cluster["coordinator"] == null
    ? null
    : _lenient(CoordinatorSchema, cluster["coordinator"]);
  if (coordinator !== null) {
    const interval = _lenient(HeartbeatSchema, cluster["heartbeat"] ?? {})?.interval ?? 200;
    for (const p of coordinatorProblems(cluster, coordinator, interval)) d.error(p.path, p.message);
  }
  if (nodeNames.length === 2 && witness == null && cluster["coordinator"] == null) {
    const survivorFence = Object.values(nodes).some((n) => _record(n)?.["fence"] != null);
    if (cluster["fence"] == null && !survivorFence) {
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

/**
 * `user:` / `group:` against this host's users, from the raw app: reported in the same pass as
 * every other problem, even when another key of the app is invalid. A value of the wrong type
 * is the schema's error; only names and ids are looked up.
 */
function _reportRunAs(name: string, app: Record<string, unknown> | null, d: _Diagnostics): void {
  if (app === null) return;
  const id = (v: unknown): v is string | number | undefined =>
    v === undefined || (typeof v === "string" && v !== "" && !/[:\s]/.test(v)) ||
    (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_ID);
  const { user, group } = app;
  if ((user === undefined && group === undefined) || !id(user) || !id(group)) return;
  const r = resolveRunAs(user, group, systemUserDb());
  if (!r.ok) d.error(["apps", name, r.key], r.message);
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
