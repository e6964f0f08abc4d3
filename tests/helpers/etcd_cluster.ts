/**
 * A real etcd cluster for tests: three (or N) `etcd` members on loopback, on free ports, with
 * their data in a temporary directory. {@linkcode EtcdCluster.start} waits until the cluster
 * answers (`etcdctl endpoint health`), {@linkcode EtcdCluster.stop} SIGKILLs every member it
 * started and removes the directory. A member can be killed and restarted alone (fault tests).
 *
 * Needs Debian's `etcd-server` and `etcd-client` (`.ci/run` installs them); {@linkcode etcdMissing}
 * says why a test must be ignored when they are not there.
 *
 * @example
 * ```ts
 * const etcd = await EtcdCluster.start(3);
 * try {
 *   console.log(etcd.endpoints); // ["http://127.0.0.1:40123", ...]
 * } finally {
 *   await etcd.stop();
 * }
 * ```
 *
 * @module
 */

/** A port nobody listens on right now. */
function _freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function _which(cmd: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${cmd}`).isFile) return true;
    } catch { /* not here */ }
  }
  return false;
}

/** Why etcd tests cannot run here (no `etcd` or `etcdctl` on PATH), or null when they can. */
export function etcdMissing(): string | null {
  const missing = ["etcd", "etcdctl"].filter((c) => !_which(c));
  return missing.length === 0
    ? null
    : `${missing.join(" and ")} not found (apt-get install etcd-server etcd-client)`;
}

/** One member of the cluster. */
export interface EtcdMember {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  process: Deno.ChildProcess | null;
}

/** Where the members run: by default on loopback in this namespace. */
export interface EtcdPlacement {
  /** Address the members listen on (default 127.0.0.1). */
  host?: string;
  /**
   * argv of a member → argv to run instead (e.g. `ip netns exec NS …`, so the members live in
   * a network namespace of a fault test); `etcdctl` always runs here, against `host`.
   */
  wrap?: (argv: string[]) => string[];
}

/** A running etcd cluster on loopback (or in a namespace: {@linkcode EtcdPlacement}). */
export class EtcdCluster {
  readonly dir: string;
  readonly members: EtcdMember[];
  readonly host: string;
  #wrap: (argv: string[]) => string[];
  #initial: string;
  #token = `baton-test-${crypto.randomUUID().slice(0, 8)}`;

  private constructor(dir: string, size: number, where: EtcdPlacement) {
    this.dir = dir;
    this.host = where.host ?? "127.0.0.1";
    this.#wrap = where.wrap ?? ((argv) => argv);
    this.members = Array.from({ length: size }, (_, i) => ({
      name: `etcd${i}`,
      clientPort: _freePort(),
      peerPort: _freePort(),
      dataDir: `${dir}/etcd${i}`,
      process: null,
    }));
    this.#initial = this.members.map((m) => `${m.name}=http://${this.host}:${m.peerPort}`)
      .join(",");
  }

  /** Start `size` members (default 3) and wait until a majority answers (bounded: `timeoutMs`). */
  static async start(
    size = 3,
    timeoutMs = 30_000,
    where: EtcdPlacement = {},
  ): Promise<EtcdCluster> {
    const dir = await Deno.makeTempDir({ prefix: "baton-etcd-" });
    const c = new EtcdCluster(dir, size, where);
    try {
      for (const m of c.members) await c.startMember(m.name, "new");
      await c.waitHealthy(timeoutMs);
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  /** Client URLs of every member. */
  get endpoints(): string[] {
    return this.members.map((m) => `http://${this.host}:${m.clientPort}`);
  }

  /** Start (or restart, with its data) one member; its log goes to `<dir>/<name>.log`. */
  async startMember(name: string, state: "new" | "existing" = "existing"): Promise<void> {
    const m = this.#member(name);
    if (m.process) return;
    const log = await Deno.open(`${this.dir}/${name}.log`, {
      create: true,
      append: true,
      write: true,
    });
    const url = (port: number) => `http://${this.host}:${port}`;
    const [cmd, ...args] = this.#wrap([
      "etcd",
      "--name",
      m.name,
      "--data-dir",
      m.dataDir,
      "--listen-client-urls",
      url(m.clientPort),
      "--advertise-client-urls",
      url(m.clientPort),
      "--listen-peer-urls",
      url(m.peerPort),
      "--initial-advertise-peer-urls",
      url(m.peerPort),
      "--initial-cluster",
      this.#initial,
      "--initial-cluster-state",
      state,
      "--initial-cluster-token",
      this.#token,
      "--heartbeat-interval",
      "100",
      "--election-timeout",
      "1000",
      "--logger",
      "zap",
    ]);
    const child = new Deno.Command(cmd!, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    child.stdout.pipeTo(log.writable, { preventClose: true }).catch(() => {});
    child.stderr.pipeTo(log.writable).catch(() => {});
    m.process = child;
  }

  /** SIGKILL one member (its data stays: {@linkcode startMember} brings it back). */
  async killMember(name: string): Promise<void> {
    const m = this.#member(name);
    const p = m.process;
    if (!p) return;
    try {
      p.kill("SIGKILL");
    } catch { /* gone */ }
    await p.status;
    m.process = null;
  }

  /** Wait until `etcdctl endpoint health` succeeds on the live members (a majority answers). */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < until) {
      const live = this.members.filter((m) => m.process).map((m) =>
        `http://${this.host}:${m.clientPort}`
      );
      const r = await this.etcdctl(["--endpoints", live.join(","), "endpoint", "health"]);
      if (r.code === 0) return;
      last = r.stderr.trim() || r.stdout.trim();
      await new Promise((res) => setTimeout(res, 200));
    }
    throw new Error(
      `etcd cluster not healthy after ${timeoutMs} ms: ${last} (logs in ${this.dir})`,
    );
  }

  /** Name of the member that is raft leader now (null: none answers as leader). */
  async leader(): Promise<string | null> {
    const live = this.members.filter((m) => m.process);
    const r = await this.etcdctl([
      "--endpoints",
      live.map((m) => `http://${this.host}:${m.clientPort}`).join(","),
      "endpoint",
      "status",
      "-w",
      "table",
    ]);
    for (const row of r.stdout.split("\n")) {
      const cells = row.split("|").map((c) => c.trim());
      // | ENDPOINT | ID | VERSION | DB SIZE | IS LEADER | ...
      if (cells[5] !== "true") continue;
      const port = Number(new URL(cells[1]!).port);
      return this.members.find((m) => m.clientPort === port)?.name ?? null;
    }
    return null;
  }

  /** Run `etcdctl` (API v3) against the cluster, bounded to 10 s. */
  async etcdctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const all = args.includes("--endpoints")
      ? args
      : ["--endpoints", this.endpoints.join(","), ...args];
    const out = await new Deno.Command("etcdctl", {
      args: ["--command-timeout=2s", "--dial-timeout=1s", ...all],
      env: { ETCDCTL_API: "3" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(10_000),
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  }

  /** SIGKILL every member this helper started and remove its directory (unless `keepDir`). */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    for (const m of this.members) await this.killMember(m.name);
    if (!opts.keepDir) await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  #member(name: string): EtcdMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) {
      throw new Error(
        `no etcd member ${name}: expected one of ${this.members.map((x) => x.name).join(", ")}`,
      );
    }
    return m;
  }
}
