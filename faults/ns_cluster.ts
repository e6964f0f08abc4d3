/**
 * A baton cluster whose agents and witness each run in their own network namespace of a
 * {@linkcode Topology}: the manifest names the hosts' switch addresses, every process is
 * started with `ip netns exec`, and status is read over the root namespace's port on the
 * switch (or, when a host is cut off, from inside its namespace with curl).
 *
 * @example
 * ```ts
 * const topo = await Topology.create(["alpha", "beta", "witness"]);
 * const c = await NsCluster.create({ topo, nodes: [...], apps: appsYaml([...]) });
 * c.startWitness();
 * await c.startAgent("alpha");
 * ```
 *
 * @module
 */
import { batonCommand, type Status } from "../scripts/local_cluster.ts";
import type { Topology } from "./netns.ts";
import { poll } from "./fault_kit.ts";

/**
 * Niceness of the simulated hosts' processes (agents, witness, and the apps they start).
 * The hosts share this machine's CPUs with everything else running on it; a real host has
 * its own, so by default they run at -10 to keep a busy neighbour from stalling heartbeats.
 * `BATON_FAULTS_NICE=0` turns this off.
 */
export const HOST_NICE = Number(Deno.env.get("BATON_FAULTS_NICE") ?? "-10");

/**
 * argv prefix that puts an app back at niceness 0 under an agent running at
 * {@linkcode HOST_NICE}: the agent is the small, time-critical part; the apps are the load.
 */
export function appNice(): string[] {
  return HOST_NICE < 0 ? ["nice", "-n", String(-HOST_NICE)] : [];
}

/** Port of every agent (each host has its own address). */
export const AGENT_PORT = 7401;
/** Port of the witness. */
export const WITNESS_PORT = 7400;

/** Options of {@linkcode NsCluster.create}. */
export interface NsClusterOptions {
  topo: Topology;
  nodes: { name: string; priority: number }[];
  /** The `apps:` body (see `appsYaml`). */
  apps: string;
  /** Host running `baton witness`; none if unset. */
  witnessHost?: string;
  interval?: string;
  deadAfter?: string;
  fenceAfter?: string;
  /** More lines under `cluster:` (indented by two spaces), e.g. a `vip:` list. */
  clusterLines?: string[];
  /**
   * Lines of a `coordinator:` block under `cluster:` (indented by two spaces): etcd instead
   * of a witness (then no `witness:` line is written).
   */
  coordinator?: string[];
}

const hasCurl = (() => {
  try {
    return new Deno.Command("curl", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/** The cluster; see the module doc. */
export class NsCluster {
  readonly dir: string;
  readonly manifest: string;
  readonly name: string;
  readonly topo: Topology;
  readonly agents = new Map<string, Deno.ChildProcess>();
  #witness: Deno.ChildProcess | null = null;
  #opts: NsClusterOptions;
  #own = new Set<string>();

  private constructor(dir: string, opts: NsClusterOptions) {
    this.dir = dir;
    this.topo = opts.topo;
    this.#opts = opts;
    this.manifest = `${dir}/baton.yaml`;
    this.name = `faults-${opts.topo.prefix}`;
  }

  /** Write manifest and secret into a new temp dir. */
  static async create(opts: NsClusterOptions): Promise<NsCluster> {
    const dir = await Deno.makeTempDir({ prefix: "baton-faults-" });
    const c = new NsCluster(dir, opts);
    const t = opts.topo;
    const hb = `{ interval: ${opts.interval ?? "100ms"}, deadAfter: ${opts.deadAfter ?? "600ms"}` +
      (opts.fenceAfter ? `, fenceAfter: ${opts.fenceAfter}` : "") + " }";
    const yaml = [
      "cluster:",
      `  name: ${c.name}`,
      "  secretFile: ./baton.secret",
      `  heartbeat: ${hb}`,
      ...(opts.coordinator ??
        (opts.witnessHost
          ? [`  witness: "http://${t.addr(opts.witnessHost)}:${WITNESS_PORT}"`]
          : ["  witness: none"])),
      ...(opts.clusterLines ?? []),
      "nodes:",
      ...opts.nodes.map((n) =>
        `  ${n.name}: { url: "http://${t.addr(n.name)}:${AGENT_PORT}", priority: ${n.priority} }`
      ),
      "apps:",
      opts.apps,
      "",
    ].join("\n");
    await Deno.writeTextFile(c.manifest, yaml);
    await Deno.writeTextFile(`${dir}/baton.secret`, `faults-${crypto.randomUUID()}\n`, {
      mode: 0o600,
    });
    return c;
  }

  /** URL of a node's API. */
  url(node: string): string {
    return `http://${this.topo.addr(node)}:${AGENT_PORT}`;
  }

  /** State directory of a node. */
  stateDir(node: string): string {
    return `${this.dir}/state-${node}`;
  }

  /** Start `baton witness` in the witness host's namespace. */
  async startWitness(): Promise<void> {
    const host = this.#opts.witnessHost;
    if (!host) throw new Error("expected witnessHost in the options, found none");
    this.#witness = await this.#spawn(
      host,
      "witness",
      batonCommand(
        "witness",
        "--listen",
        `${this.topo.addr(host)}:${WITNESS_PORT}`,
        "-m",
        this.manifest,
      ),
    );
  }

  /** Start one agent in its host's namespace; its log goes to `${dir}/<node>.log`. */
  async startAgent(node: string, ...extra: string[]): Promise<void> {
    const child = await this.#spawn(
      node,
      node,
      batonCommand(
        "run",
        "--manifest",
        this.manifestOf(node),
        "--node",
        node,
        "--state-dir",
        this.stateDir(node),
        ...extra,
      ),
    );
    this.agents.set(node, child);
  }

  async #spawn(host: string, log: string, argv: string[]): Promise<Deno.ChildProcess> {
    const path = `${this.dir}/${log}.log`;
    const niced = HOST_NICE !== 0 ? ["nice", "-n", String(HOST_NICE), ...argv] : argv;
    const child = this.topo.spawn(host, niced, {
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    });
    // One handle per stream: a WritableStream takes a single pipe at a time.
    await pumpTo(child.stdout, path);
    await pumpTo(child.stderr, path);
    return child;
  }

  /** The manifest a node runs on: its own copy if {@linkcode NsCluster.writeOwnManifest} made one. */
  manifestOf(node: string): string {
    return this.#own.has(node) ? `${this.dir}/baton-${node}.yaml` : this.manifest;
  }

  /**
   * Give `node` its own manifest, the shared one rewritten by `edit` (a rolling change of
   * settings reaches one host before the others). Takes effect at its next start or reload.
   */
  async writeOwnManifest(node: string, edit: (yaml: string) => string): Promise<void> {
    const yaml = edit(await Deno.readTextFile(this.manifest));
    await Deno.writeTextFile(`${this.dir}/baton-${node}.yaml`, yaml);
    this.#own.add(node);
  }

  /** Send a signal to a running agent (SIGHUP: reload its manifest). */
  signalAgent(node: string, signal: Deno.Signal): void {
    this.agents.get(node)?.kill(signal);
  }

  /**
   * Start any helper process in a host's namespace (a proxy, an attacker) at the hosts'
   * niceness; its output goes to `${dir}/<log>.log`. It is killed with the topology.
   */
  spawnOn(host: string, log: string, argv: string[]): Promise<Deno.ChildProcess> {
    return this.#spawn(host, log, argv);
  }

  /** Kill an agent (not its apps) and wait for it to exit. */
  async killAgent(node: string, signal: Deno.Signal = "SIGKILL"): Promise<void> {
    const child = this.agents.get(node);
    if (!child) return;
    try {
      child.kill(signal);
    } catch { /* gone */ }
    await child.status;
    this.agents.delete(node);
  }

  /** GET /v1/status of a node: over the switch, else from inside its namespace; null if neither. */
  async status(node: string): Promise<Status | null> {
    try {
      const res = await fetch(`${this.url(node)}/v1/status`, { signal: AbortSignal.timeout(700) });
      if (res.ok) return await res.json() as Status;
      await res.body?.cancel();
    } catch { /* cut off: try from inside */ }
    if (!hasCurl) return null;
    const out = await new Deno.Command("ip", {
      args: this.topo.wrap(node, ["curl", "-s", "-m", "2", `${this.url(node)}/v1/status`]),
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return null;
    try {
      return JSON.parse(new TextDecoder().decode(out.stdout)) as Status;
    } catch {
      return null;
    }
  }

  /** Wait until `node` answers in `role`. */
  waitRole(node: string, role: string, timeoutMs = 20_000): Promise<Status> {
    return poll(`${node} to be ${role}`, async () => {
      const s = await this.status(node);
      return s && s.role === role ? s : null;
    }, timeoutMs);
  }

  /** The last lines of every log, for a failure message. */
  async logs(lines = 30): Promise<string> {
    const out: string[] = [];
    for (const e of Deno.readDirSync(this.dir)) {
      if (!e.name.endsWith(".log")) continue;
      const text = await Deno.readTextFile(`${this.dir}/${e.name}`).catch(() => "");
      out.push(`--- ${e.name}`, ...text.trimEnd().split("\n").slice(-lines));
    }
    return out.join("\n");
  }

  /** Kill agents and witness; the topology's destroy() kills the apps. Removes the dir. */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    for (const node of [...this.agents.keys()]) await this.killAgent(node);
    if (this.#witness) {
      try {
        this.#witness.kill("SIGKILL");
      } catch { /* gone */ }
      await this.#witness.status;
      this.#witness = null;
    }
    if (!opts.keepDir) await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Append a stream to a file through its own handle as the data comes (a file's writable
 * stream would hold the data back until it is closed), closing the handle at the end.
 */
async function pumpTo(stream: ReadableStream<Uint8Array>, path: string): Promise<void> {
  const file = await Deno.open(path, { create: true, append: true, write: true });
  (async () => {
    for await (const chunk of stream) {
      let written = 0;
      while (written < chunk.length) written += await file.write(chunk.subarray(written));
    }
  })().catch(() => {}).finally(() => {
    try {
      file.close();
    } catch { /* already closed */ }
  });
}
