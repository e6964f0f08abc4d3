/**
 * A cluster of real baton agents on loopback, for the demo, the integration tests and the
 * benchmarks: writes a manifest and a secret to a temporary directory, starts agents and a
 * witness as real processes (`deno run` with the same flags as the compiled binary), reads
 * their status endpoints, and cleans every process up afterwards.
 *
 * @module
 */
import { removeClusterLimits } from "../src/supervisor/limits_adopt.ts";
import { removeClusterCgroups } from "../src/supervisor/cgroup.ts";

/** The flags the compiled binary is built with (`deno task compile`); tests run with the same. */
/** `deno run` flags of the agent: `--unstable-net` for the systemd notify socket (notify.ts). */
export const BATON_FLAGS = ["--unstable-net", "--allow-all", "--no-prompt"];

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** argv that runs baton from source exactly as the binary would. */
export function batonCommand(...args: string[]): string[] {
  return [Deno.execPath(), "run", ...BATON_FLAGS, `${ROOT}/main.ts`, ...args];
}

/** argv of the sample app (examples/sample_app.ts). */
export function sampleAppCommand(port: number, name: string, ...extra: string[]): string[] {
  return [
    Deno.execPath(),
    "run",
    "--allow-net",
    "--allow-env",
    `${ROOT}/examples/sample_app.ts`,
    "--port",
    String(port),
    "--name",
    name,
    "--hostname",
    "127.0.0.1",
    ...extra,
  ];
}

/** A port nobody listens on right now. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Status document as served by `GET /v1/status` (the fields tests read). */
export interface Status {
  node: string;
  role: string;
  epoch: number;
  maintenance: boolean;
  roleReason: string;
  apps: {
    name: string;
    state: string;
    pid: number | null;
    restarts: number;
    movable: boolean;
    escalated: boolean;
  }[];
  peers: {
    name: string;
    reachable: boolean;
    role: string | null;
    epoch: number;
    maintenance: boolean;
  }[];
  warnings: string[];
  events: { kind: string; app: string | null; message: string; level: string }[];
  /** Floating IPs (`cluster.vip`), when configured. */
  vips?: { address: string; interface: string; held: boolean; error: string | null }[];
}

/** Options of {@linkcode LocalCluster}. */
export interface LocalClusterOptions {
  nodes: { name: string; priority: number }[];
  witness?: boolean;
  /** Lines of a `coordinator:` block under `cluster:` (indented by 2), instead of a witness. */
  coordinator?: string;
  /** YAML of the `apps:` section body (indented by 2), given the app ports. */
  apps: (ports: number[]) => string;
  /** Number of app ports to reserve. */
  appPorts?: number;
  interval?: string;
  deadAfter?: string;
  fenceAfter?: string;
  /** Extra lines under `cluster:` (indented by 2). */
  clusterExtra?: string;
  /** Extra keys of a node's mapping (`fence: [...]`), by node. */
  nodeExtra?: Record<string, string>;
  /** Keep the directory afterwards (demo). */
  dir?: string;
  /** Address each node (and `witness`) listens on; default 127.0.0.1 (benchmarks). */
  hosts?: Record<string, string>;
  /** Network namespace each node (and `witness`) runs in, via `ip netns exec`; default none. */
  netns?: Record<string, string>;
  /** Extra `deno run` flags for the agents (benchmarks: `--v8-flags=…`); default none. */
  denoFlags?: string[];
  /** Scheme of the node URLs; default "http". With "https", give `clusterExtra` a `tls:` block. */
  scheme?: "http" | "https";
  /** Scheme of the witness URL; default "http". "https" needs the `tls:` block too. */
  witnessScheme?: "http" | "https";
  /** PEM file of the CA that signed the nodes' certificates, trusted by `status()`. */
  caFile?: string;
  /**
   * Niceness of the agents and the witness (their apps inherit it), via `nice -n`; default
   * none. Negative values need root; without root the option is ignored.
   */
  nice?: number;
  /** Extra environment of each node's agent (e.g. `BATON_BOOT_ID_FILE` to fake a reboot). */
  env?: Record<string, Record<string, string>>;
}

/** A running local cluster. */
export class LocalCluster {
  readonly dir: string;
  readonly manifest: string;
  readonly secret = "local-cluster-secret-" + crypto.randomUUID();
  readonly ports: Record<string, number> = {};
  readonly appPorts: number[];
  readonly witnessPort: number;
  /** Unique per cluster: the cluster name, so a leftover app of another run is never adopted. */
  readonly id = crypto.randomUUID().slice(0, 8);
  readonly agents = new Map<string, Deno.ChildProcess>();
  #witness: Deno.ChildProcess | null = null;
  #opts: LocalClusterOptions;
  /** HTTP client trusting `caFile`, made on the first status read of a TLS cluster. */
  #client: Deno.HttpClient | null = null;

  private constructor(dir: string, opts: LocalClusterOptions) {
    this.dir = dir;
    this.#opts = opts;
    this.manifest = `${dir}/baton.yaml`;
    for (const n of opts.nodes) this.ports[n.name] = freePort();
    this.witnessPort = freePort();
    this.appPorts = Array.from({ length: opts.appPorts ?? 2 }, () => freePort());
  }

  /** Write the manifest and secret; start nothing yet. */
  static async create(opts: LocalClusterOptions): Promise<LocalCluster> {
    const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "baton-cluster-" });
    await Deno.mkdir(dir, { recursive: true });
    const c = new LocalCluster(dir, opts);
    await c.writeManifest();
    await Deno.writeTextFile(`${dir}/baton.secret`, c.secret + "\n", { mode: 0o600 });
    return c;
  }

  /** (Re)write the manifest, optionally with another apps section. */
  async writeManifest(apps?: string): Promise<void> {
    const o = this.#opts;
    const nodes = o.nodes.map((n) =>
      `  ${n.name}: { url: "${this.url(n.name)}", priority: ${n.priority}` +
      (o.nodeExtra?.[n.name] ? `, ${o.nodeExtra[n.name]}` : "") + " }"
    ).join("\n");
    const yaml = [
      "cluster:",
      `  name: local-${this.id}`,
      "  secretFile: ./baton.secret",
      `  heartbeat: { interval: ${o.interval ?? "100ms"}, deadAfter: ${o.deadAfter ?? "600ms"}` +
      (o.fenceAfter ? `, fenceAfter: ${o.fenceAfter}` : "") + " }",
      ...(o.coordinator ? [o.coordinator] : o.witness
        ? [
          `  witness: "${o.witnessScheme ?? "http"}://${this.host("witness")}:${this.witnessPort}"`,
        ]
        : ["  witness: none"]),
      ...(o.clusterExtra ? [o.clusterExtra] : []),
      "nodes:",
      nodes,
      "apps:",
      apps ?? o.apps(this.appPorts),
      "",
    ].join("\n");
    await Deno.writeTextFile(this.manifest, yaml);
  }

  /** URL of a node's API. */
  url(node: string): string {
    return `${this.#opts.scheme ?? "http"}://${this.host(node)}:${this.ports[node]}`;
  }

  /** Address a node (or `witness`) listens on. */
  host(who: string): string {
    return this.#opts.hosts?.[who] ?? "127.0.0.1";
  }

  /** Program and arguments that run `deno …args` for a node (or `witness`), in its netns. */
  #command(who: string, args: string[]): [string, string[]] {
    const ns = this.#opts.netns?.[who];
    const n = this.#opts.nice;
    const niced = n !== undefined && n !== 0 && (n > 0 || Deno.uid() === 0)
      ? ["nice", "-n", String(n)]
      : [];
    const argv = [...niced, Deno.execPath(), ...args];
    return ns ? ["ip", ["netns", "exec", ns, ...argv]] : [argv[0]!, argv.slice(1)];
  }

  /** State directory of a node. */
  stateDir(node: string): string {
    return `${this.dir}/state-${node}`;
  }

  /** Start the baton witness. */
  startWitness(): void {
    const [program, args] = this.#command(
      "witness",
      batonCommand(
        "witness",
        "--listen",
        `${this.host("witness")}:${this.witnessPort}`,
        "-m",
        this.manifest,
      )
        .slice(1),
    );
    this.#witness = new Deno.Command(program, {
      args,
      stdout: "null",
      stderr: "null",
      stdin: "null",
    }).spawn();
  }

  /** Stop the witness (SIGKILL). */
  async killWitness(): Promise<void> {
    if (!this.#witness) return;
    try {
      this.#witness.kill("SIGKILL");
    } catch { /* gone */ }
    await this.#witness.status;
    this.#witness = null;
  }

  /** Start one agent; its log goes to `${dir}/<node>.log`. */
  async startAgent(node: string, ...extra: string[]): Promise<void> {
    // One handle per stream: a file's writable can be piped to by only one stream at a time.
    const open = () =>
      Deno.open(`${this.dir}/${node}.log`, { create: true, append: true, write: true });
    const [outLog, errLog] = [await open(), await open()];
    const [program, args] = this.#command(
      node,
      batonCommand(
        "run",
        "--manifest",
        this.manifest,
        "--node",
        node,
        "--state-dir",
        this.stateDir(node),
        ...extra,
      ).slice(1).toSpliced(1, 0, ...(this.#opts.denoFlags ?? [])),
    );
    const child = new Deno.Command(program, {
      args,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
      ...(this.#opts.env?.[node] ? { env: this.#opts.env[node] } : {}),
    }).spawn();
    pump(child.stdout, outLog);
    pump(child.stderr, errLog);
    this.agents.set(node, child);
  }

  /** Kill an agent (not its apps) with a signal and wait for it to exit. */
  async killAgent(node: string, signal: Deno.Signal = "SIGKILL"): Promise<void> {
    const child = this.agents.get(node);
    if (!child) return;
    try {
      child.kill(signal);
    } catch { /* gone */ }
    await child.status;
    this.agents.delete(node);
  }

  /**
   * Kill an agent AND every app process it started or recorded: the whole host dies. The
   * agent is frozen first so it starts nothing more; its children are collected because the
   * state file can lag behind a spawn the status already shows.
   */
  async killHost(node: string): Promise<void> {
    const pids = new Set(await this.recordedPids(node));
    const child = this.agents.get(node);
    if (child) {
      try {
        Deno.kill(child.pid, "SIGSTOP");
      } catch { /* gone */ }
      for (const pid of childrenOf(child.pid)) pids.add(pid);
    }
    await this.killAgent(node);
    for (const pid of await this.recordedPids(node)) pids.add(pid);
    // The node's guard (src/guard/) dies with the host too, first: it must not act on its own.
    const guard = this.guardPid(node);
    if (guard !== null) killGroup(guard);
    this.#killLogWriter(node);
    for (const pid of pids) killGroup(pid);
    // And whatever the apps started outside their process groups (their cgroups).
    removeClusterCgroups(`local-${this.id}`, { node, kill: true });
  }

  /** The node's log writer (src/logs/) dies with the host, like its guard. */
  #killLogWriter(node: string): void {
    try {
      const [pid] = Deno.readTextFileSync(`${this.stateDir(node)}/logwriter/pid`).split(" ");
      if (pid !== undefined && alive(Number(pid))) killGroup(Number(pid));
    } catch { /* none */ }
  }

  /** PID of the node's guard (the lease keeper), or null if it has none running. */
  guardPid(node: string): number | null {
    try {
      const [pid] = Deno.readTextFileSync(`${this.stateDir(node)}/guard/pid`).trim().split(" ");
      return pid !== undefined && alive(Number(pid)) ? Number(pid) : null;
    } catch {
      return null;
    }
  }

  /** PIDs in a node's state file. */
  async recordedPids(node: string): Promise<number[]> {
    try {
      const s = JSON.parse(await Deno.readTextFile(`${this.stateDir(node)}/state.json`));
      return Object.values(s.apps as Record<string, { pid: number }>).map((a) => a.pid);
    } catch {
      return [];
    }
  }

  /** GET /v1/status of a node, or null if it does not answer. */
  async status(node: string): Promise<Status | null> {
    if (this.#opts.caFile && !this.#client) {
      this.#client = Deno.createHttpClient({
        caCerts: [await Deno.readTextFile(this.#opts.caFile)],
      });
    }
    try {
      const res = await fetch(`${this.url(node)}/v1/status`, {
        signal: AbortSignal.timeout(2000),
        ...(this.#client ? { client: this.#client } : {}),
      });
      if (!res.ok) {
        await res.body?.cancel();
        return null;
      }
      return await res.json() as Status;
    } catch {
      return null;
    }
  }

  /** Run a baton CLI command against this cluster; returns exit code and output. */
  async cli(
    node: string,
    ...args: string[]
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const out = await new Deno.Command(Deno.execPath(), {
      args: batonCommand(...args, "--manifest", this.manifest, "--node", node).slice(1),
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  }

  /** Poll `fn` until it returns a truthy value or `timeoutMs` passes (then throws). */
  waitFor<T>(
    what: string,
    fn: () => Promise<T | null | undefined | false>,
    timeoutMs = 15_000,
  ): Promise<T> {
    return poll(what, fn, timeoutMs);
  }

  /** Wait until `node` answers and is in `role`; returns its status. */
  waitRole(node: string, role: string, timeoutMs = 15_000): Promise<Status> {
    return this.waitFor(`${node} to be ${role}`, async () => {
      const s = await this.status(node);
      return s && s.role === role ? s : null;
    }, timeoutMs);
  }

  /** Wait until every app named runs on `node` (state running, pid set). */
  waitRunning(node: string, apps: string[], timeoutMs = 15_000): Promise<Status> {
    return this.waitFor(`${apps.join(", ")} running on ${node}`, async () => {
      const s = await this.status(node);
      return s &&
          apps.every((a) => s.apps.find((x) => x.name === a && x.state === "running" && x.pid))
        ? s
        : null;
    }, timeoutMs);
  }

  /** Kill every agent, the witness and every app process any node recorded; remove the dir. */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    const pids: number[] = [];
    for (const n of this.#opts.nodes) pids.push(...await this.recordedPids(n.name));
    for (const node of [...this.agents.keys()]) await this.killHost(node);
    // Guards of agents killed earlier (killAgent) outlive them by design: not the cluster.
    for (const n of this.#opts.nodes) {
      const guard = this.guardPid(n.name);
      if (guard !== null) killGroup(guard);
      this.#killLogWriter(n.name);
    }
    await this.killWitness();
    for (const n of this.#opts.nodes) pids.push(...await this.recordedPids(n.name));
    for (const pid of pids) killGroup(pid);
    this.#client?.close();
    this.#client = null;
    // The apps' cgroups empty once the SIGKILLs above are delivered: retry for a moment.
    for (let i = 0; i < 20 && removeClusterCgroups(`local-${this.id}`, { kill: true }); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    removeClusterLimits(`local-${this.id}`); // the v1 cgroups of `limits:`
    if (!opts.keepDir && !this.#opts.dir) {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }
}

/** Poll `fn` every `everyMs` until it returns a truthy value; throws after `timeoutMs`. */
export async function poll<T>(
  what: string,
  fn: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
}

/** SIGKILL a process group (apps are group leaders), then the pid itself; ignore the gone. */
export function killGroup(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      Deno.kill(target, "SIGKILL");
    } catch { /* gone */ }
  }
}

/** PIDs of the live children of `parent`, from /proc. */
function childrenOf(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) pids.push(Number(entry.name));
    } catch { /* gone */ }
  }
  return pids;
}

/** Whether a process exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** A live process of a sample app (started with `--name <app>-<tag>`), found in /proc. */
export interface SampleProc {
  pid: number;
  /** `BATON_NODE` from its environment: the node whose agent started it (null if unreadable). */
  node: string | null;
}

/**
 * Every live (non-zombie) process of the sample apps `apps` of test `tag`, by app: one pass
 * over /proc, matching `--name <app>-<tag>` in the argv. Used by the tests that sample from
 * outside whether an app runs twice.
 */
export function scanSampleApps(tag: string, apps: string[]): Record<string, SampleProc[]> {
  const found: Record<string, SampleProc[]> = Object.fromEntries(apps.map((n) => [n, []]));
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    let argv: string[];
    try {
      argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    } catch {
      continue;
    }
    const i = argv.indexOf("--name");
    const name = i < 0 ? undefined : argv[i + 1];
    if (!name?.endsWith(`-${tag}`)) continue;
    const procs = found[name.slice(0, -tag.length - 1)];
    if (!procs || !alive(pid)) continue;
    let node: string | null = null;
    try {
      const env = Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0");
      node = env.find((e) => e.startsWith("BATON_NODE="))?.slice("BATON_NODE=".length) ?? null;
    } catch { /* gone meanwhile */ }
    procs.push({ pid, node });
  }
  return found;
}

/**
 * Copy a child's output to a log file as it comes. Not `pipeTo(file.writable)`: in Deno 2.9
 * a file's writable stream buffers until it is closed, so the log would stay empty while the
 * agent runs.
 */
function pump(stream: ReadableStream<Uint8Array>, file: Deno.FsFile): void {
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
