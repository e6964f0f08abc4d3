/**
 * Fixtures for the pure-core tests: a normalized {@linkcode Manifest} built by hand (no YAML
 * loader involved) and a tiny harness around `step` that plays the drivers' part on demand
 * and checks the core's invariants after every step:
 * - the epoch never decreases;
 * - a spawn never runs under an epoch that has not been persisted yet.
 *
 * @module
 */
import assert from "node:assert/strict";
import type {
  AppSpec,
  CheckSpec,
  FencingSpec,
  Manifest,
  NodeSpec,
} from "../../src/manifest/types.ts";
import { initNodeState, nodeInfo } from "../../src/core/node_state.ts";
import { step } from "../../src/core/step.ts";
import type {
  Action,
  AdoptedApp,
  Event,
  NodeInfo,
  NodeState,
  PersistedState,
  Role,
  StartMode,
} from "../../src/core/types.ts";

/** Heartbeat timing used by default: deadAfter > fenceAfter + interval, as the schema requires. */
export const HB = { intervalMs: 1_000, fenceAfterMs: 3_000, deadAfterMs: 5_000 };

/** Restart policy used by default. */
export const RESTART = { limit: 1, windowMs: 60_000, backoffMs: 1_000, backoffMaxMs: 8_000 };

/** Options of {@linkcode appSpec}. */
export interface AppOptions {
  movable?: boolean;
  nodes?: string[] | null;
  check?: CheckSpec;
  restart?: Partial<AppSpec["restart"]>;
  /** Spec hash; default `<name>-v1`. */
  hash?: string;
  command?: string[];
  /** `dependsOn` (start order and readiness). */
  dependsOn?: string[];
  /** `readyTimeout`, in milliseconds. */
  readyTimeoutMs?: number;
}

/**
 * A normalized app spec. Movable by default, with a `process` check.
 *
 * @example
 * ```ts
 * const web = appSpec("web", { check: httpCheck(3) });
 * ```
 */
export function appSpec(name: string, opts: AppOptions = {}): AppSpec {
  return {
    name,
    command: opts.command ?? ["/bin/sleep", "1000"],
    cwd: null,
    env: {},
    movable: opts.movable ?? true,
    nodes: opts.nodes ?? null,
    check: opts.check ?? { type: "process" },
    restart: { ...RESTART, ...opts.restart },
    stop: { signal: "SIGTERM", timeoutMs: 5_000 },
    hash: opts.hash ?? `${name}-v1`,
    ...(opts.dependsOn ? { dependsOn: opts.dependsOn } : {}),
    ...(opts.readyTimeoutMs !== undefined ? { readyTimeoutMs: opts.readyTimeoutMs } : {}),
  };
}

/** An http check that fails the app after `failures` consecutive failed results. */
export function httpCheck(failures = 3): CheckSpec {
  return {
    type: "http",
    url: "http://127.0.0.1:8080/health",
    expectStatus: null,
    expectBody: null,
    intervalMs: 1_000,
    timeoutMs: 500,
    failures,
    initialDelayMs: 0,
  };
}

/** Options of {@linkcode makeManifest}. */
export interface ManifestOptions {
  /** Node name → priority. Default: one node, `alpha`. */
  nodes?: Record<string, number>;
  apps?: AppSpec[];
  heartbeat?: Partial<typeof HB>;
  /**
   * Configure a witness: `true` or `"http"` a plain one (takeovers go through a claim once a
   * `witness` event says it is a baton witness), `"baton"` a baton witness as the manifest
   * declares it (takeovers always claim).
   */
  witness?: boolean | "baton" | "http";
  fence?: string[] | null;
  /** Survivor fencing: node name → its fence command (`nodes.X.fence`). */
  nodeFence?: Record<string, string[]>;
  /** Survivor fencing policy (`cluster.fencing`); absent: the default. */
  fencing?: FencingSpec;
  failedCooldownMs?: number | null;
  /** Manifest hash; default derived from the app hashes. */
  hash?: string;
}

/**
 * A normalized manifest, built by hand.
 *
 * @example
 * ```ts
 * const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: [appSpec("web")] });
 * ```
 */
export function makeManifest(opts: ManifestOptions = {}): Manifest {
  const nodes: Record<string, NodeSpec> = {};
  let port = 7401;
  for (const [name, priority] of Object.entries(opts.nodes ?? { alpha: 1 })) {
    const fence = opts.nodeFence?.[name];
    nodes[name] = {
      name,
      url: `http://127.0.0.1:${port++}`,
      priority,
      ...(fence ? { fence } : {}),
    };
  }
  const apps: Record<string, AppSpec> = {};
  for (const app of opts.apps ?? []) apps[app.name] = app;
  return {
    cluster: {
      name: "test",
      secretFile: null,
      heartbeat: { ...HB, ...opts.heartbeat },
      witness: opts.witness
        ? { url: "http://127.0.0.1:7400", kind: opts.witness === "baton" ? "baton" : "http" }
        : null,
      fence: opts.fence ?? null,
      ...(opts.fencing ? { fencing: opts.fencing } : {}),
      failedCooldownMs: opts.failedCooldownMs ?? null,
      tls: null,
    },
    nodes,
    apps,
    hash: opts.hash ?? `m:${Object.values(apps).map((a) => a.hash).join(",")}`,
    path: "/etc/baton/baton.yaml",
  };
}

// ---------------------------------------------------------------- action filters

type ActionOf<T extends Action["type"]> = Extract<Action, { type: T }>;

/** Actions of one type, in order. */
export function ofType<T extends Action["type"]>(actions: Action[], type: T): ActionOf<T>[] {
  return actions.filter((a): a is ActionOf<T> => a.type === type);
}

/** The spawn actions. */
export function spawns(actions: Action[]): ActionOf<"spawn">[] {
  return ofType(actions, "spawn");
}

/** The stop actions. */
export function stops(actions: Action[]): ActionOf<"stop">[] {
  return ofType(actions, "stop");
}

/** The record actions, of one kind if `kind` is given. */
export function records(actions: Action[], kind?: string): ActionOf<"record">[] {
  return ofType(actions, "record").filter((r) => kind === undefined || r.kind === kind);
}

/** The reply actions. */
export function replies(actions: Action[]): ActionOf<"reply">[] {
  return ofType(actions, "reply");
}

/** Names of the apps in spawn (or stop) actions, sorted. */
export function appNames(actions: { app: string }[]): string[] {
  return actions.map((a) => a.app).sort();
}

/** Index of the first action matching `pred`, or -1. */
export function indexOf(actions: Action[], pred: (a: Action) => boolean): number {
  return actions.findIndex(pred);
}

// ---------------------------------------------------------------- the harness

/** Options of {@linkcode boot}. */
export interface BootOptions {
  mode?: StartMode;
  /** Time of the boot event (and of `initNodeState`). Default 0. */
  now?: number;
  persisted?: PersistedState | null;
  adopted?: AdoptedApp[];
  lost?: string[];
  /** The boot fact: the host rebooted since the agent last ran (default: absent, unknown). */
  reboot?: boolean;
  /** The watchdog fact: the device opened (default: absent). */
  watchdog?: boolean;
  /** Complete the spawns of the boot step (feed `app_started`). Default true. */
  settle?: boolean;
}

/** One node's core with a driver that does only what the test tells it to. */
export class CoreHarness {
  /** The core state (updated in place by `step`). */
  readonly state: NodeState;
  /** Every action of every step, in order. */
  readonly log: Action[] = [];
  #nextPid: number;
  #maxEpoch: number;
  #persistedEpoch: number;
  #lastNow = -Infinity;

  /** Use {@linkcode boot}. */
  constructor(state: NodeState, pidBase: number, persistedEpoch: number) {
    this.state = state;
    this.#nextPid = pidBase;
    this.#maxEpoch = state.epoch;
    this.#persistedEpoch = persistedEpoch;
  }

  /** The latest `now` fed. */
  get now(): number {
    return this.#lastNow;
  }

  /** Feed one event and check the invariants on what came out. */
  feed(event: Event, now: number): Action[] {
    this.#lastNow = now;
    const { actions } = step(this.state, event, now);
    for (const a of actions) {
      if (a.type === "persist") {
        assert.ok(
          a.state.epoch >= this.#persistedEpoch,
          `${this.state.self}: persisted epoch went from ${this.#persistedEpoch} to ${a.state.epoch}`,
        );
        this.#persistedEpoch = a.state.epoch;
      } else if (a.type === "spawn") {
        assert.ok(
          a.epoch <= this.#persistedEpoch,
          `${this.state.self}: spawn of ${a.app} at epoch ${a.epoch} before that epoch was ` +
            `persisted (last persisted ${this.#persistedEpoch}) on ${event.type}`,
        );
      }
    }
    assert.ok(
      this.state.epoch >= this.#maxEpoch,
      `${this.state.self}: epoch went from ${this.#maxEpoch} to ${this.state.epoch} on ${event.type}`,
    );
    this.#maxEpoch = this.state.epoch;
    this.log.push(...actions);
    return actions;
  }

  /** A timer tick. */
  tick(now: number): Action[] {
    return this.feed({ type: "tick" }, now);
  }

  /** Tick every `everyMs` from `from` to `to` inclusive; all actions in order. */
  ticks(from: number, to: number, everyMs = 100): Action[] {
    const all: Action[] = [];
    for (let t = from; t <= to; t += everyMs) all.push(...this.tick(t));
    return all;
  }

  /** Pid the harness will give the next started process. */
  peekPid(): number {
    return this.#nextPid;
  }

  /** The driver reports a spawned process of `app` (spec hash from the current manifest, if any). */
  started(app: string, now: number, pid = this.#nextPid++): Action[] {
    const specHash = this.state.manifest.apps[app]?.hash ?? "not-in-manifest";
    return this.feed({ type: "app_started", app, pid, startTime: pid * 10, specHash }, now);
  }

  /** The current process of `app` exits (crash by default). */
  exit(app: string, now: number, detail = "exited with code 1"): Action[] {
    return this.feed({ type: "app_exited", app, pid: this.pid(app), detail }, now);
  }

  /** A check result for the current process of `app`. */
  check(app: string, ok: boolean, now: number, detail = ok ? "200 OK" : "503"): Action[] {
    return this.feed({ type: "check", app, pid: this.pid(app), ok, detail }, now);
  }

  /** An operator command. */
  command(
    command: Extract<Event, { type: "command" }>["command"],
    now: number,
    id = "req",
  ): Action[] {
    return this.feed({ type: "command", id, command }, now);
  }

  /** What a peer hears from this node. */
  info(): NodeInfo {
    return nodeInfo(this.state);
  }

  /**
   * Deliver another node's info: by default as the reply to our heartbeat sent at `sentAt`
   * (= `now`); `sentAt` null delivers it as a heartbeat the other node sent us.
   */
  hear(other: CoreHarness | NodeInfo, now: number, sentAt: number | null = now): Action[] {
    const info = other instanceof CoreHarness ? other.info() : other;
    return this.feed(
      sentAt === null ? { type: "peer_info", info } : { type: "peer_info", info, sentAt },
      now,
    );
  }

  /** A witness reply. */
  witness(
    now: number,
    kind: "baton" | "http" | null = "http",
    active: { node: string; epoch: number; ageMs: number } | null = null,
    ok = true,
    sentAt: number = now,
  ): Action[] {
    return this.feed(
      { type: "witness", ok, kind, active, error: ok ? null : "timeout", sentAt },
      now,
    );
  }

  /**
   * Play a perfect driver: every spawn starts, every stop ends in an exit, including those the
   * resulting steps emit. Returns the actions the completions produced.
   */
  settle(actions: Action[], now: number): Action[] {
    const produced: Action[] = [];
    const queue = [...actions];
    for (let guard = 0; queue.length > 0; guard++) {
      assert.ok(guard < 1_000, `${this.state.self}: settle does not converge`);
      const a = queue.shift()!;
      let next: Action[] = [];
      if (a.type === "spawn") next = this.started(a.app, now);
      else if (a.type === "stop") {
        next = this.feed(
          { type: "app_exited", app: a.app, pid: a.pid, detail: `killed by ${a.mode}` },
          now,
        );
      }
      produced.push(...next);
      queue.push(...next);
    }
    return produced;
  }

  /** Current pid of `app` (asserts it has one). */
  pid(app: string): number {
    const pid = this.state.apps[app]?.pid;
    assert.ok(typeof pid === "number", `${this.state.self}: app ${app} has no pid`);
    return pid;
  }

  /** Names of the apps that have a process here, sorted. */
  running(): string[] {
    return Object.values(this.state.apps).filter((a) => a.pid !== null).map((a) => a.name)
      .sort();
  }
}

/**
 * Create a node's core, feed it its boot event and (by default) start what the boot spawned.
 * Pids are unique per node: alpha gets 1000…, beta 2000…, and so on by node order.
 *
 * @example
 * ```ts
 * const h = boot("alpha", makeManifest({ apps: [appSpec("web")] }));
 * h.settle(h.tick(0), 0); // a single node becomes active and starts web
 * ```
 */
export function boot(node: string, manifest: Manifest, opts: BootOptions = {}): CoreHarness {
  const now = opts.now ?? 0;
  const state = initNodeState(node, manifest, opts.mode ?? "auto", now);
  const index = Object.keys(manifest.nodes).indexOf(node);
  const h = new CoreHarness(state, 1000 * (index + 1), opts.persisted?.epoch ?? 0);
  const actions = h.feed(
    {
      type: "boot",
      persisted: opts.persisted ?? null,
      adopted: opts.adopted ?? [],
      lost: opts.lost ?? [],
      ...(opts.reboot === undefined ? {} : { reboot: opts.reboot }),
      ...(opts.watchdog === undefined ? {} : { watchdog: opts.watchdog }),
    },
    now,
  );
  if (opts.settle ?? true) h.settle(actions, now);
  return h;
}

/** Deliver every node's heartbeat to every other node at `now`. */
export function exchange(now: number, ...nodes: CoreHarness[]): void {
  for (const from of nodes) {
    for (const to of nodes) if (to !== from) to.hear(from, now);
  }
}

/**
 * Run a cluster with a perfect network from `from` to `to`: every `everyMs` each node ticks
 * (its spawns and stops complete at once) and then every node hears every other.
 */
export function runCluster(nodes: CoreHarness[], from: number, to: number, everyMs = 500): void {
  for (let t = from; t <= to; t += everyMs) {
    for (const n of nodes) n.settle(n.tick(t), t);
    for (const n of nodes) {
      for (const other of nodes) if (other !== n) n.settle(n.hear(other, t), t);
    }
    assertOneActive(nodes);
  }
}

/** No two nodes are active at the same epoch, and at most one active runs movable apps. */
export function assertOneActive(nodes: CoreHarness[]): void {
  const actives = nodes.filter((n) => n.state.role === "active");
  const epochs = new Set(actives.map((n) => n.state.epoch));
  assert.equal(epochs.size, actives.length, `two actives share an epoch: ${describe(nodes)}`);
  const runningMovable = nodes.filter((n) =>
    Object.values(n.state.apps).some((a) =>
      a.pid !== null && n.state.manifest.apps[a.name]?.movable
    )
  );
  assert.ok(runningMovable.length <= 1, `movable apps run on two nodes: ${describe(nodes)}`);
}

/** One line per node, for assertion messages. */
export function describe(nodes: CoreHarness[]): string {
  return nodes.map((n) =>
    `${n.state.self}=${n.state.role}@${n.state.epoch}[${n.running().join(",")}]`
  ).join(" ");
}

/**
 * The persisted state of `node` as the store would hand it back at boot, with `apps` recorded
 * (PID, start time, spec hash, restarts) as the agent saved them before it stopped.
 */
export function persisted(
  node: string,
  role: Role,
  epoch: number,
  apps: AdoptedApp[] = [],
  roleSeq = 0,
): PersistedState {
  const out: PersistedState = {
    version: 1,
    node,
    epoch,
    role,
    roleSeq,
    maintenance: false,
    failedReason: null,
    apps: {},
  };
  for (const a of apps) {
    out.apps[a.app] = {
      pid: a.pid,
      startTime: a.startTime,
      specHash: a.specHash,
      restarts: a.restarts,
    };
  }
  return out;
}

/** A process of `spec` found alive at boot: start time derived from the PID, as in the tests. */
export function adopted(
  spec: AppSpec,
  pid: number,
  restarts = 0,
  specHash = spec.hash,
): AdoptedApp {
  return { app: spec.name, pid, startTime: pid * 10, specHash, restarts };
}
