/**
 * `baton explain [APP]`: in sentences, why the node has its role, why each app is in its state,
 * and what baton will do on the next failure ("web was restarted once at 10:02:03 after its http
 * check failed 3 time(s) in a row; another failure before 10:12:03 moves web, api to beta").
 *
 * A pure function of what the CLI fetched: the node's status document, its recent decision log
 * and the manifest (for the restart limits, windows and checks, which the status document does
 * not carry), plus the wall time and time zone to print times in. No clock read, no I/O.
 *
 * The next step follows the core's policy (`src/core/app_policy.ts`, `takeover.ts`): a failure
 * restarts the app while `restarts < restart.limit`; the counter comes back to 0 once the app has
 * run `restart.window` since its last start; a failure beyond the limit escalates, and on an
 * active node with an available standby (reachable, standby, not in maintenance; highest
 * priority, then name) every movable app moves there; otherwise the app is restarted here with
 * backoff. Maintenance mode stops every restart and move.
 *
 * @module
 */
import type { AppStatus, StatusDoc } from "../peer/api_types.ts";
import type { Manifest } from "../manifest/types.ts";
import type { EventRecord } from "../store/event_log.ts";

/** What {@linkcode explain} reads. */
export interface ExplainInput {
  status: StatusDoc;
  /** The node's recent decision log, oldest first (may repeat `status.events`). */
  events: EventRecord[];
  /** The manifest the CLI loaded (null if none); compared with the agent's by hash. */
  manifest: Manifest | null;
  /** Wall time (ms since the epoch) the status document was fetched at. */
  now: number;
  /** Minutes to add to UTC for printed times (0 = UTC). */
  utcOffsetMin?: number;
}

/** The explanation of one app. */
export interface AppExplanation {
  app: string;
  /** Why it is in its state. */
  state: string;
  /** Its recent failures and restarts (empty when there were none). */
  history: string;
  /** What baton does on its next failure. */
  next: string;
}

/** The whole explanation (also the `--json` document). */
export interface Explanation {
  node: string;
  /** Why the node has its role. */
  role: string;
  /** The cluster around it: peers, witness, handovers, maintenance, a manifest mismatch. */
  cluster: string[];
  apps: AppExplanation[];
}

/**
 * Explain a node, or only `app` on it.
 *
 * @example
 * ```ts
 * import type { StatusDoc } from "../peer/api_types.ts";
 * import type { EventRecord } from "../store/event_log.ts";
 * import type { Manifest } from "../manifest/types.ts";
 * declare const status: StatusDoc;
 * declare const events: EventRecord[];
 * declare const manifest: Manifest | null;
 * const e = explain({ status, events, manifest, now: Date.now() }, "web");
 * console.log(formatExplanation(e));
 * ```
 */
export function explain(input: ExplainInput, app?: string): Explanation {
  const s = input.status;
  const m = input.manifest && input.manifest.hash === s.manifestHash ? input.manifest : null;
  const ctx: Ctx = { ...input, manifest: m, events: mergeEvents(s.events, input.events) };
  const apps = s.apps.filter((a) => app === undefined || a.name === app);
  return {
    node: s.node,
    role: roleSentence(ctx),
    cluster: clusterSentences(ctx, input.manifest),
    apps: apps.map((a) => explainApp(ctx, a)),
  };
}

/** The explanation as text: the role, the cluster, then one paragraph per app. */
export function formatExplanation(e: Explanation): string {
  const lines = [e.role, ...e.cluster];
  for (const a of e.apps) {
    lines.push("", `${a.app}: ${a.state}`);
    if (a.history) lines.push(`  ${a.history}`);
    lines.push(`  Next failure: ${a.next}`);
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------- internals

type Ctx = Omit<ExplainInput, "events"> & { events: EventRecord[] };

function mergeEvents(a: EventRecord[], b: EventRecord[]): EventRecord[] {
  const seen = new Set<string>();
  const all: EventRecord[] = [];
  for (const r of [...a, ...b]) {
    const key = `${r.time}\u0000${r.kind}\u0000${r.app}\u0000${r.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    all.push(r);
  }
  return all.sort((x, y) => x.time.localeCompare(y.time));
}

/** `HH:MM:SS` in the requested offset. */
export function clock(ms: number, utcOffsetMin = 0): string {
  return new Date(ms + utcOffsetMin * 60_000).toISOString().slice(11, 19);
}

function at(ctx: Ctx, iso: string): string {
  return clock(Date.parse(iso), ctx.utcOffsetMin);
}

/** `250ms`, `4s`, `2m30s`, `1h5m`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const min = Math.floor(s / 60);
  if (min < 60) return s % 60 ? `${min}m${s % 60}s` : `${min}m`;
  const h = Math.floor(min / 60);
  return min % 60 ? `${h}h${min % 60}m` : `${h}h`;
}

function times(n: number): string {
  return n === 1 ? "once" : n === 2 ? "twice" : `${n} times`;
}

function list(names: string[]): string {
  return names.length === 0 ? "nothing" : names.join(", ");
}

function lastEvent(ctx: Ctx, pred: (r: EventRecord) => boolean): EventRecord | null {
  for (let i = ctx.events.length - 1; i >= 0; i--) {
    const r = ctx.events[i]!;
    if (pred(r)) return r;
  }
  return null;
}

/** The standby the movable apps would go to now, as the core picks it. */
function bestStandby(s: StatusDoc): StatusDoc["peers"][number] | null {
  const c = s.peers.filter((p) => p.reachable && p.role === "standby" && !p.maintenance);
  c.sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
  return c[0] ?? null;
}

/** Why no standby can take the apps, as the core says it. */
function noStandbyReason(s: StatusDoc): string {
  if (s.peers.length === 0) return "this is a single-node cluster";
  return s.peers.map((p) =>
    !p.reachable
      ? `${p.name} is unreachable`
      : p.maintenance
      ? `${p.name} is in maintenance`
      : `${p.name} is ${p.role ?? "of unknown role"}`
  ).join(", ");
}

function movableNames(s: StatusDoc): string[] {
  return s.apps.filter((a) => a.movable && a.check !== "removed").map((a) => a.name);
}

function roleSentence(ctx: Ctx): string {
  const s = ctx.status;
  const head = `${s.node} is ${s.role} at epoch ${s.epoch}`;
  if (s.role === "active") {
    const since = lastEvent(ctx, (r) => r.kind === "active" && r.app === null);
    return `${head}${since ? ` since ${at(ctx, since.time)}` : ""}: ${s.roleReason}.`;
  }
  if (s.role === "failed") {
    const since = lastEvent(ctx, (r) => r.kind === "failed" && r.app === null);
    const cooldown = ctx.manifest?.cluster.failedCooldownMs ?? null;
    const until = since && cooldown !== null
      ? ` or until ${clock(Date.parse(since.time) + cooldown, ctx.utcOffsetMin)} ` +
        `(failedCooldown ${duration(cooldown)})`
      : "";
    return `${head}${since ? ` since ${at(ctx, since.time)}` : ""}: ` +
      `${s.failedReason ?? s.roleReason}. It runs no movable app and never becomes active ` +
      `until "baton clear"${until}.`;
  }
  const active = s.peers.find((p) => p.reachable && p.role === "active");
  const tail = active
    ? ` The active node is ${active.name} (epoch ${active.epoch}); if it fails or is not heard ` +
      `for deadAfter, ${takeoverBy(ctx)}.`
    : " No active node is reachable.";
  return `${head}: ${s.roleReason}.${tail}`;
}

/** Who takes over when the active goes (for a standby's explanation). */
function takeoverBy(ctx: Ctx): string {
  const s = ctx.status;
  const mine = ctx.manifest?.nodes[s.node]?.priority ?? null;
  const better = s.peers.find((p) =>
    p.reachable && p.role === "standby" && !p.maintenance && mine !== null &&
    (p.priority > mine || (p.priority === mine && p.name < s.node))
  );
  if (s.maintenance) return "this node does not take over (maintenance)";
  if (better) return `${better.name} takes over (higher priority)`;
  const witness = s.witness ? " with the witness's agreement" : "";
  return `this node takes over ${list(movableNames(s))}${witness}`;
}

function clusterSentences(ctx: Ctx, localManifest: Manifest | null): string[] {
  const s = ctx.status;
  const out: string[] = [];
  if (s.maintenance) out.push("Maintenance is on: baton restarts nothing and moves nothing here.");
  if (s.handover) {
    out.push(
      `A ${s.handover.kind} to ${s.handover.to} is under way (${s.handover.phase}): ` +
        `${s.handover.reason}.`,
    );
  }
  for (const p of s.peers) {
    out.push(
      p.reachable
        ? `Peer ${p.name} is ${p.role ?? "of unknown role"} at epoch ${p.epoch}` +
          `${p.maintenance ? " (maintenance)" : ""}, heard ${
            duration(p.lastHeartbeatAgeMs ?? 0)
          } ago.`
        : `Peer ${p.name} is unreachable${p.error ? ` (${p.error})` : ""}.`,
    );
  }
  if (s.witness) {
    out.push(
      `The witness ${s.witness.url} is ${s.witness.reachable ? "reachable" : "UNREACHABLE"}.`,
    );
  }
  if (localManifest && localManifest.hash !== s.manifestHash) {
    out.push(
      `The local manifest (${localManifest.hash.slice(0, 12)}) is not the one ${s.node} runs ` +
        `(${s.manifestHash.slice(0, 12)}): restart limits and windows are not shown.`,
    );
  }
  return out;
}

function explainApp(ctx: Ctx, a: AppStatus): AppExplanation {
  return {
    app: a.name,
    state: stateSentence(ctx, a),
    history: historySentence(ctx, a),
    next: nextSentence(ctx, a),
  };
}

function allowedHere(ctx: Ctx, a: AppStatus): boolean {
  const nodes = ctx.manifest?.apps[a.name]?.nodes ?? null;
  return nodes === null || nodes.includes(ctx.status.node);
}

function stateSentence(ctx: Ctx, a: AppStatus): string {
  const s = ctx.status;
  if (a.check === "removed") return `${a.state}: removed from the manifest, being stopped.`;
  if (!allowedHere(ctx, a)) {
    return `${a.state}: it does not run on ${s.node} (apps.${a.name}.nodes).`;
  }
  switch (a.state) {
    case "running": {
      const up = a.uptimeMs === null ? "" : ` for ${duration(a.uptimeMs)}`;
      const c = a.lastCheck;
      const check = c
        ? `; its ${a.check} check ${c.ok ? "passed" : "FAILED"} ${duration(c.ageMs)} ago ` +
          `(${c.detail})`
        : a.check === "process"
        ? "; watched by process presence"
        : "";
      return `running as pid ${a.pid}${up}${check}.`;
    }
    case "backoff":
      return `waiting to be restarted (backoff) after: ${a.lastFailure ?? "a failure"}.`;
    case "starting":
      return "starting.";
    case "stopping":
      return `stopping${a.lastFailure ? ` after: ${a.lastFailure}` : ""}.`;
    default: {
      if (a.movable && s.role !== "active") {
        const active = s.peers.find((p) => p.reachable && p.role === "active");
        return `stopped here: it is movable and ${s.node} is ${s.role}` +
          (active ? `; it runs on the active node ${active.name}.` : "; no active node is seen.");
      }
      return `stopped${a.lastFailure ? ` after: ${a.lastFailure}` : ""}.`;
    }
  }
}

/** The failure text of a restart/escalation record: what came before "; restarting…". */
function cause(message: string): string {
  const c = message.replace(/; (restarting on this node|failed again after).*$/, "");
  return /^(http|tcp|exec) check /.test(c) ? `its ${c}` : c;
}

function historySentence(ctx: Ctx, a: AppStatus): string {
  const mine = ctx.events.filter((r) => r.app === a.name);
  const restarts = mine.filter((r) => r.kind === "restart");
  const esc = [...mine].reverse().find((r) => r.kind === "escalation");
  const parts: string[] = [];
  if (a.restarts > 0) {
    const last = restarts[restarts.length - 1];
    parts.push(
      `${a.name} was restarted ${times(a.restarts)}` +
        (last ? ` at ${at(ctx, last.time)} after ${cause(last.message)}` : "") + ".",
    );
  } else if (a.totalRestarts > 0) {
    parts.push(
      `${a.name} was restarted ${times(a.totalRestarts)} since the agent started; its restart ` +
        `counter is back to 0 (healthy for a whole window, or cleared).`,
    );
  }
  if (a.escalated) {
    parts.push(
      `It failed again${esc ? ` at ${at(ctx, esc.time)} (${cause(esc.message)})` : ""} after ` +
        `its restart: escalated, the host is suspect.`,
    );
  }
  return parts.join(" ");
}

function nextSentence(ctx: Ctx, a: AppStatus): string {
  const s = ctx.status;
  if (a.check === "removed" || !allowedHere(ctx, a)) return "nothing: it is not supervised here.";
  if (s.maintenance) return "nothing is restarted or moved (maintenance mode).";
  if (a.movable && s.role !== "active") {
    return `it does not run here; if it fails on the active node, that node restarts or moves it.`;
  }
  const spec = ctx.manifest?.apps[a.name];
  if (!spec) return `${failureMeaning()} (the agent's manifest is not at hand: no more detail).`;
  const { limit, windowMs } = spec.restart;
  const escalation = escalationOutcome(ctx, a);
  const counts = `${failureMeaning(spec)}.`;
  if (a.escalated) {
    return `${counts} It is escalated: each failure restarts it here with backoff` +
      (s.role === "active" && bestStandby(s) === null
        ? `; as soon as a standby is available baton moves ${list(movableNames(s))} to it.`
        : ".");
  }
  if (a.restarts < limit) {
    return `${counts} The next one restarts ${a.name} here (restart ${a.restarts + 1} of ` +
      `${limit} in ${duration(windowMs)}); a failure of the restarted app within ` +
      `${duration(windowMs)} ${escalation}.`;
  }
  const startedAt = a.uptimeMs !== null ? ctx.now - a.uptimeMs : null;
  const until = startedAt === null
    ? ""
    : ` before ${clock(startedAt + windowMs, ctx.utcOffsetMin)}`;
  return `${counts} Another failure${until} ${escalation}` +
    (until ? `; after that the counter is back to 0 and a failure only restarts it.` : ".");
}

/** What a failure is for this app. */
function failureMeaning(spec?: Manifest["apps"][string]): string {
  const c = spec?.check;
  if (!c || c.type === "process") return "A failure is the process exiting";
  return `A failure is the process exiting, or its ${c.type} check failing ${c.failures} ` +
    `time(s) in a row (every ${duration(c.intervalMs)}, timeout ${duration(c.timeoutMs)})`;
}

/** What an escalation of `a` does now, as a verb phrase. */
function escalationOutcome(ctx: Ctx, a: AppStatus): string {
  const s = ctx.status;
  const spec = ctx.manifest?.apps[a.name];
  const backoff = spec
    ? ` (${duration(spec.restart.backoffMs)}, doubling up to ${
      duration(spec.restart.backoffMaxMs)
    })`
    : "";
  if (s.role !== "active") {
    return `restarts it here with backoff${backoff}: a ${s.role} moves nothing`;
  }
  const to = bestStandby(s);
  if (!to) {
    return `restarts it here with backoff${backoff}, since no standby can take over ` +
      `(${noStandbyReason(s)})`;
  }
  const movable = movableNames(s);
  const stays = a.movable ? "" : ` (${a.name} is not movable: it stays and restarts with backoff)`;
  return `moves ${list(movable)} to ${to.name}${stays}, and ${s.node} becomes failed`;
}
