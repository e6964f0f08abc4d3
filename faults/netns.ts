/**
 * Real network topologies for the fault-injection suite, built from Linux network namespaces:
 * one namespace per host (alpha, beta, witness, ...), each joined by a veth pair to a bridge in
 * a fourth "switch" namespace, plus one veth from the root namespace into the switch so the
 * test process can reach every host directly. Faults are injected on the switch:
 * - {@linkcode Topology.linkDown} sets a host's switch-side port down (the host is cut off
 *   from everyone, both directions);
 * - {@linkcode Topology.block} drops packets between two hosts, one direction, optionally only
 *   TCP to one port, with an nftables rule in the bridge's forward hook (needs `nft`).
 *
 * Every name carries a random prefix (`btn` + 4 hex digits) and every run uses its own
 * 10.77.X.0/24, so parallel runs do not clash. The owner's PID is recorded in
 * `/run/baton-faults/<prefix>.owner`; {@linkcode cleanupStale} removes what dead owners left.
 * {@linkcode Topology.destroy} kills every process living in the namespaces and deletes them.
 *
 * @example
 * ```ts
 * const support = probeNetns();
 * if (support.ok) {
 *   const topo = await Topology.create(["alpha", "beta", "witness"]);
 *   try {
 *     const child = new Deno.Command("ip", { args: topo.wrap("alpha", ["sleep", "1"]) });
 *     await topo.linkDown("alpha");
 *   } finally {
 *     await topo.destroy();
 *   }
 * }
 * ```
 *
 * @module
 */

/** Directory of the owner records. */
export const OWNER_DIR = "/run/baton-faults";
/** Prefix of every namespace and interface this module creates. */
export const NAME_PREFIX = "btn";

/** What {@linkcode probeNetns} found. */
export interface NetnsSupport {
  /** Namespaces, veths and a bridge can be made. */
  ok: boolean;
  /** Why not, when `ok` is false. */
  reason: string;
  /** nftables can drop traffic on the bridge (needed for selective partitions). */
  nft: boolean;
  /** Why not, when `nft` is false. */
  nftReason: string;
}

/** Run a command synchronously; returns exit code and output (never throws). */
function runSync(cmd: string, args: string[]): { code: number; out: string } {
  try {
    const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" })
      .outputSync();
    const dec = new TextDecoder();
    return { code: r.code, out: (dec.decode(r.stdout) + dec.decode(r.stderr)).trim() };
  } catch (err) {
    return { code: -1, out: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Whether this process can build topologies: root, `ip` present, a trial namespace with a
 * bridge and a veth pair works, and (separately) `nft` can add a bridge table. Synchronous so
 * test files can compute `ignore:` at load time.
 *
 * @example
 * ```ts
 * const s = probeNetns();
 * if (!s.ok) console.log(`netns tests skipped: ${s.reason}`);
 * ```
 */
export function probeNetns(): NetnsSupport {
  const no = (reason: string): NetnsSupport => ({
    ok: false,
    reason,
    nft: false,
    nftReason: reason,
  });
  if (Deno.build.os !== "linux") return no(`expected Linux, found ${Deno.build.os}`);
  if (Deno.uid() !== 0) return no(`expected to run as root (uid 0), found uid ${Deno.uid()}`);
  if (runSync("ip", ["-V"]).code !== 0) {
    return no("the `ip` command (iproute2) is missing: apt-get install -y iproute2");
  }
  const p = `${NAME_PREFIX}p${randomHex(3)}`;
  const ns = `${p}-probe`;
  const steps: [string, string[]][] = [
    ["ip", ["netns", "add", ns]],
    ["ip", ["-n", ns, "link", "add", `${p}b`, "type", "bridge"]],
    ["ip", ["-n", ns, "link", "add", `${p}x`, "type", "veth", "peer", "name", `${p}y`]],
    ["ip", ["-n", ns, "link", "set", `${p}x`, "master", `${p}b`]],
  ];
  let reason = "";
  for (const [cmd, args] of steps) {
    const r = runSync(cmd, args);
    if (r.code !== 0) {
      reason = `\`${cmd} ${args.join(" ")}\` failed: ${r.out}`;
      break;
    }
  }
  let nft = false;
  let nftReason = "";
  if (reason === "") {
    const v = runSync("nft", ["--version"]);
    if (v.code !== 0) {
      nftReason = "the `nft` command (nftables) is missing: apt-get install -y nftables";
    } else {
      const r = runSync("ip", [
        "netns",
        "exec",
        ns,
        "nft",
        "add table bridge baton_probe",
      ]);
      nft = r.code === 0;
      if (!nft) nftReason = `nft cannot add a bridge table: ${r.out}`;
    }
  } else {
    nftReason = reason;
  }
  runSync("ip", ["netns", "del", ns]);
  if (reason !== "") return no(reason);
  return { ok: true, reason: "", nft, nftReason };
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("").slice(0, bytes * 2);
}

/** Run a command; throws saying which command failed and what it printed. */
export async function sh(cmd: string, ...args: string[]): Promise<string> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" })
    .output();
  const dec = new TextDecoder();
  const out = dec.decode(r.stdout) + dec.decode(r.stderr);
  if (r.code !== 0) {
    throw new Error(`expected \`${cmd} ${args.join(" ")}\` to exit 0, found ${r.code}: ${out}`);
  }
  return out;
}

/** The network namespace inode of a process, or null if it is gone. */
export function netnsOfPid(pid: number): number | null {
  try {
    const link = Deno.readLinkSync(`/proc/${pid}/ns/net`);
    const m = /\[(\d+)\]/.exec(link);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** One host of a {@linkcode Topology}. */
export interface Host {
  name: string;
  /** Namespace name. */
  ns: string;
  /** IPv4 address on the switch. */
  addr: string;
  /** Interface name inside the host namespace. */
  hostIf: string;
  /** Interface name of its port on the switch. */
  switchIf: string;
}

/** A drop rule on the switch. */
export interface Block {
  from: string;
  to: string;
  /** Only TCP to this port of `to`. */
  tcpDport?: number;
}

/** A star of namespaces around a bridge; see the module doc. */
export class Topology {
  /** Random prefix of every name. */
  readonly prefix: string;
  /** First three octets of the subnet, e.g. `10.77.42`. */
  readonly subnet: string;
  /** The switch namespace. */
  readonly switchNs: string;
  /** The root namespace's address on the switch. */
  readonly rootAddr: string;
  /** Hosts by name. */
  readonly hosts = new Map<string, Host>();
  #blocks: Block[] = [];
  #nft = false;
  #inodes = new Map<number, string>();
  #destroyed = false;

  private constructor(prefix: string, octet: number) {
    this.prefix = prefix;
    this.subnet = `10.77.${octet}`;
    this.switchNs = `${prefix}-sw`;
    this.rootAddr = `${this.subnet}.1`;
  }

  /**
   * Build the topology with one namespace per host name (addresses .2, .3, ... in order).
   * On any failure everything made so far is removed before the error is thrown.
   */
  static async create(hostNames: string[]): Promise<Topology> {
    await cleanupStale();
    await Deno.mkdir(OWNER_DIR, { recursive: true });
    let topo: Topology | null = null;
    for (let i = 0; i < 20 && topo === null; i++) {
      const candidate = new Topology(`${NAME_PREFIX}${randomHex(2)}`, await freeOctet());
      try {
        // The owner record claims the prefix: another run never picks (or removes) it.
        await Deno.writeTextFile(
          `${OWNER_DIR}/${candidate.prefix}.owner`,
          JSON.stringify({ pid: Deno.pid, subnet: candidate.subnet }) + "\n",
          { createNew: true },
        );
        topo = candidate;
      } catch (err) {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      }
    }
    if (topo === null) throw new Error("expected a free name prefix, found 20 taken in a row");
    try {
      await topo.#build(hostNames);
    } catch (err) {
      await topo.destroy();
      throw err;
    }
    return topo;
  }

  async #build(hostNames: string[]): Promise<void> {
    const p = this.prefix;
    const sw = this.switchNs;
    const br = `${p}br`;
    await sh("ip", "netns", "add", sw);
    await sh("ip", "-n", sw, "link", "set", "lo", "up");
    await sh("ip", "-n", sw, "link", "add", br, "type", "bridge");
    await sh("ip", "-n", sw, "link", "set", br, "up");
    let i = 0;
    for (const name of hostNames) {
      const host: Host = {
        name,
        ns: `${p}-${name}`,
        addr: `${this.subnet}.${i + 2}`,
        hostIf: `${p}h${i}`,
        switchIf: `${p}s${i}`,
      };
      i++;
      await sh("ip", "netns", "add", host.ns);
      this.hosts.set(name, host);
      await sh("ip", "-n", host.ns, "link", "set", "lo", "up");
      await sh(
        "ip",
        "link",
        "add",
        host.hostIf,
        "netns",
        host.ns,
        "type",
        "veth",
        "peer",
        "name",
        host.switchIf,
        "netns",
        sw,
      );
      await sh("ip", "-n", sw, "link", "set", host.switchIf, "master", br, "up");
      await sh("ip", "-n", host.ns, "addr", "add", `${host.addr}/24`, "dev", host.hostIf);
      await sh("ip", "-n", host.ns, "link", "set", host.hostIf, "up");
      this.#inodes.set(Deno.statSync(`/run/netns/${host.ns}`).ino ?? -1, name);
    }
    // The root namespace's own port, so the test process reaches every host directly.
    await sh(
      "ip",
      "link",
      "add",
      `${p}rr`,
      "type",
      "veth",
      "peer",
      "name",
      `${p}rs`,
      "netns",
      sw,
    );
    await sh("ip", "-n", sw, "link", "set", `${p}rs`, "master", br, "up");
    await sh("ip", "addr", "add", `${this.rootAddr}/24`, "dev", `${p}rr`);
    await sh("ip", "link", "set", `${p}rr`, "up");
    // The bridge table for block(); absent nft only disables block().
    try {
      await sh(
        "ip",
        "netns",
        "exec",
        sw,
        "nft",
        "add table bridge baton; add chain bridge baton cut " +
          "{ type filter hook forward priority 0; policy accept; }",
      );
      this.#nft = true;
    } catch {
      this.#nft = false;
    }
    await this.#waitReachable();
  }

  /** Wait (bounded) until the root namespace can talk to every host over the bridge. */
  async #waitReachable(): Promise<void> {
    for (const host of this.hosts.values()) {
      const deadline = Date.now() + 10_000;
      while (!(await tcpReachable(host.addr, 9, 500))) {
        if (Date.now() > deadline) {
          throw new Error(`expected ${host.name} (${host.addr}) reachable within 10 s, it is not`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** A host by name; throws on an unknown one. */
  host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) {
      throw new Error(`expected a host of ${[...this.hosts.keys()].join(", ")}, got "${name}"`);
    }
    return h;
  }

  /** Address of a host on the switch. */
  addr(name: string): string {
    return this.host(name).addr;
  }

  /** Whether {@linkcode Topology.block} works (nftables present). */
  get canBlock(): boolean {
    return this.#nft;
  }

  /** Arguments for `ip` that run `argv` inside the host's namespace. */
  wrap(name: string, argv: string[]): string[] {
    return ["netns", "exec", this.host(name).ns, ...argv];
  }

  /** Start `argv` inside a host's namespace. */
  spawn(name: string, argv: string[], opts: Deno.CommandOptions = {}): Deno.ChildProcess {
    return new Deno.Command("ip", { ...opts, args: this.wrap(name, argv) }).spawn();
  }

  /** Cut a host off the switch (its switch-side port goes down). */
  async linkDown(name: string): Promise<void> {
    await sh(
      "nice",
      "-n",
      "-10",
      "ip",
      "-n",
      this.switchNs,
      "link",
      "set",
      this.host(name).switchIf,
      "down",
    );
  }

  /** Reconnect a host cut off by {@linkcode Topology.linkDown}. */
  async linkUp(name: string): Promise<void> {
    await sh(
      "nice",
      "-n",
      "-10",
      "ip",
      "-n",
      this.switchNs,
      "link",
      "set",
      this.host(name).switchIf,
      "up",
    );
  }

  /**
   * Take a host's switch port down for `ms`, then up again, from one high-priority shell so
   * the length does not depend on how fast this process is scheduled. Returns the bounds of
   * the real outage as the shell measured them: at least `minMs`, at most `maxMs`.
   */
  async blip(name: string, ms: number): Promise<{ minMs: number; maxMs: number }> {
    const set = (state: string) =>
      `ip -n ${this.switchNs} link set ${this.host(name).switchIf} ${state}`;
    const script = `a=$EPOCHREALTIME; ${set("down")}; b=$EPOCHREALTIME; sleep ${ms / 1000}; ` +
      `c=$EPOCHREALTIME; ${set("up")}; d=$EPOCHREALTIME; echo $a $b $c $d`;
    const out = await sh("nice", "-n", "-10", "bash", "-c", script);
    const [t0, t1, t2, t3] = out.trim().split(/\s+/).map((x) => Number(x.replace(",", ".")) * 1000);
    return { minMs: Math.round(t2! - t1!), maxMs: Math.round(t3! - t0!) };
  }

  /**
   * Drop every packet to and from a host on the switch for `ms` (the links stay up: pure
   * packet loss), from one high-priority shell. Returns the bounds of the real loss window as
   * the shell measured them. Needs nftables.
   */
  async dropBlip(name: string, ms: number): Promise<{ minMs: number; maxMs: number }> {
    if (!this.#nft) throw new Error("expected nftables for dropBlip(), found none");
    const a = this.addr(name);
    const nft = (rules: string) => `ip netns exec ${this.switchNs} nft '${rules}'`;
    const script = `a=$EPOCHREALTIME; ` +
      nft(
        `add rule bridge baton cut ip saddr ${a} drop; add rule bridge baton cut ip daddr ${a} drop`,
      ) +
      `; b=$EPOCHREALTIME; sleep ${ms / 1000}; c=$EPOCHREALTIME; ` +
      nft("flush chain bridge baton cut") + `; d=$EPOCHREALTIME; echo $a $b $c $d`;
    const out = await sh("nice", "-n", "-10", "bash", "-c", script);
    await this.#applyBlocks(); // restore any standing blocks
    const [t0, t1, t2, t3] = out.trim().split(/\s+/).map((x) => Number(x.replace(",", ".")) * 1000);
    return { minMs: Math.round(t2! - t1!), maxMs: Math.round(t3! - t0!) };
  }

  /** Drop packets from one host to another on the switch (one direction). */
  async block(b: Block): Promise<void> {
    if (!this.#nft) throw new Error("expected nftables for block(), found none (see probeNetns)");
    this.#blocks.push(b);
    await this.#applyBlocks();
  }

  /** Drop every packet between two hosts, both directions. */
  async blockBoth(a: string, b: string): Promise<void> {
    await this.block({ from: a, to: b });
    await this.block({ from: b, to: a });
  }

  /** Remove every block. */
  async unblockAll(): Promise<void> {
    this.#blocks = [];
    if (this.#nft) await this.#applyBlocks();
  }

  async #applyBlocks(): Promise<void> {
    const rules = ["flush chain bridge baton cut"];
    for (const b of this.#blocks) {
      const port = b.tcpDport !== undefined ? ` tcp dport ${b.tcpDport}` : "";
      rules.push(
        `add rule bridge baton cut ip saddr ${this.addr(b.from)} ip daddr ${
          this.addr(b.to)
        }${port} drop`,
      );
    }
    await sh("nice", "-n", "-10", "ip", "netns", "exec", this.switchNs, "nft", rules.join("; "));
  }

  /**
   * Inside `host`'s namespace, send new TCP connections from `fromHosts` to `port` on to
   * `toPort` of the same host instead (an nftables redirect in its prerouting hook): a man in
   * the middle listening on `toPort` sees them with their original destination, while the
   * host's own connections to `port` (the middle's upstream) are left alone. Needs nftables;
   * only connections opened after the call are redirected.
   */
  async redirect(host: string, port: number, toPort: number, fromHosts: string[]): Promise<void> {
    const from = fromHosts.map((h) => this.addr(h)).join(", ");
    await sh(
      "ip",
      "netns",
      "exec",
      this.host(host).ns,
      "nft",
      "add table ip baton_mitm; add chain ip baton_mitm pre " +
        "{ type nat hook prerouting priority -100; policy accept; }; " +
        `add rule ip baton_mitm pre ip saddr { ${from} } tcp dport ${port} redirect to :${toPort}`,
    );
  }

  /** Network namespace inode → host name, for a sampler on another thread. */
  inodes(): Record<string, string> {
    return Object.fromEntries([...this.#inodes].map(([ino, name]) => [String(ino), name]));
  }

  /** The host a process runs on (by its network namespace), or null if not one of ours. */
  hostOfPid(pid: number): string | null {
    const ino = netnsOfPid(pid);
    return ino === null ? null : this.#inodes.get(ino) ?? null;
  }

  /** PIDs of every process living in one of the host namespaces. */
  processes(): number[] {
    const pids: number[] = [];
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      const pid = Number(e.name);
      if (this.hostOfPid(pid) !== null) pids.push(pid);
    }
    return pids;
  }

  /**
   * Kill every process in the host namespaces (SIGKILL, bounded wait), delete the
   * namespaces, the root veth and the owner record. Safe to call twice and after a failed
   * {@linkcode Topology.create}.
   */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (let round = 0; round < 50; round++) {
      const pids = this.processes();
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await removeByPrefix(this.prefix);
  }
}

/** Delete every namespace and root interface named with `prefix`, and its owner record. */
async function removeByPrefix(prefix: string): Promise<void> {
  const list = runSync("ip", ["netns", "list"]).out.split("\n")
    .map((l) => l.split(" ")[0] ?? "").filter((n) => n.startsWith(`${prefix}-`));
  for (const ns of list) runSync("ip", ["netns", "del", ns]);
  runSync("ip", ["link", "del", `${prefix}rr`]);
  await Deno.remove(`${OWNER_DIR}/${prefix}.owner`).catch(() => {});
}

/** A /24 under 10.77/16 that no interface or route of the root namespace uses yet. */
async function freeOctet(): Promise<number> {
  const used = (await sh("ip", "-4", "addr")) + (await sh("ip", "-4", "route"));
  const taken = new Set<number>();
  for (const m of used.matchAll(/10\.77\.(\d+)\./g)) taken.add(Number(m[1]));
  for (let i = 0; i < 200; i++) {
    const octet = 1 + Math.floor(Math.random() * 250);
    if (!taken.has(octet)) return octet;
  }
  throw new Error("expected a free 10.77.X.0/24, found all of them in use");
}

/**
 * Remove topologies whose owner process is gone (a run that was killed before its `finally`).
 * Returns the prefixes removed. Namespaces without an owner record are left alone.
 */
export async function cleanupStale(): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(OWNER_DIR)];
  } catch {
    return removed;
  }
  for (const e of entries) {
    const m = /^(btn[0-9a-f]+)\.owner$/.exec(e.name);
    if (!m || !m[1]) continue;
    let pid = 0;
    try {
      pid = JSON.parse(await Deno.readTextFile(`${OWNER_DIR}/${e.name}`)).pid;
    } catch { /* unreadable: treat as dead */ }
    if (pid > 0 && pidAlive(pid)) continue;
    const prefix = m[1];
    // Kill whatever still lives in those namespaces before deleting them.
    const inodes = new Set<number>();
    for (const line of runSync("ip", ["netns", "list"]).out.split("\n")) {
      const ns = line.split(" ")[0] ?? "";
      if (!ns.startsWith(`${prefix}-`)) continue;
      try {
        inodes.add(Deno.statSync(`/run/netns/${ns}`).ino ?? -1);
      } catch { /* gone */ }
    }
    for (const d of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(d.name)) continue;
      const ino = netnsOfPid(Number(d.name));
      if (ino !== null && inodes.has(ino)) {
        try {
          Deno.kill(Number(d.name), "SIGKILL");
        } catch { /* gone */ }
      }
    }
    await removeByPrefix(prefix);
    removed.push(prefix);
  }
  return removed;
}

/**
 * Whether a TCP connect to `hostname:port` gets an answer within `timeoutMs`: accepted or
 * refused both prove the path works (a refusal is the peer's RST coming back).
 */
export async function tcpReachable(
  hostname: string,
  port: number,
  timeoutMs: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((
    r,
  ) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
  const attempt = Deno.connect({ hostname, port }).then(
    (conn) => {
      conn.close();
      return true;
    },
    (err) => err instanceof Deno.errors.ConnectionRefused,
  );
  const r = await Promise.race([attempt, timeout]);
  clearTimeout(timer);
  if (r === "timeout") {
    attempt.then(() => {}, () => {});
    return false;
  }
  return r;
}

/** Whether a process exists and is not a zombie. */
function pidAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}
