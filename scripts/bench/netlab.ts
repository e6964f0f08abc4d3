/**
 * A throwaway network lab: a Linux bridge and one network namespace per host, each joined to
 * the bridge by a veth pair, with its own address in a private /24 that nothing on the machine
 * uses (checked against `ip addr` and `ip route`; the addresses exist only inside the lab). A host is cut off by setting its link down inside its
 * namespace, which leaves the bridge and every other host untouched. `destroy()` removes the
 * namespaces and the bridge; an interrupted run does the same through `onInterrupt`.
 *
 * @module
 */
import { onInterrupt, run } from "./common.ts";

/** A bridge plus one namespace per host. */
export class NetLab {
  readonly bridge: string;
  readonly hosts: Record<string, { ns: string; ip: string; veth: string }>;
  /** The first three octets of the lab's /24. */
  readonly subnet: string;
  #unregister: () => void = () => {};

  private constructor(
    bridge: string,
    hosts: Record<string, { ns: string; ip: string; veth: string }>,
    subnet: string,
  ) {
    this.bridge = bridge;
    this.hosts = hosts;
    this.subnet = subnet;
  }

  /**
   * Create the lab: `hosts` maps a host name to the last octet of its address; the /24 is
   * picked among private ranges that no address or route of this machine uses yet. `rootOctet`,
   * when set, gives the benchmark's own namespace an address on the bridge so it can reach
   * the hosts.
   */
  static async create(
    ip: string,
    hosts: Record<string, number>,
    rootOctet: number | null,
  ): Promise<NetLab> {
    const subnet = await _freeSubnet(ip);
    const tag = crypto.randomUUID().slice(0, 4);
    const bridge = `btbr${tag}`;
    const table: Record<string, { ns: string; ip: string; veth: string }> = {};
    let i = 0;
    for (const [name, octet] of Object.entries(hosts)) {
      table[name] = { ns: `bt-${tag}-${name}`, ip: `${subnet}.${octet}`, veth: `bt${tag}v${i++}` };
    }
    const lab = new NetLab(bridge, table, subnet);
    lab.#ip = ip;
    lab.#unregister = onInterrupt(() => lab.destroy());
    try {
      await run([ip, "link", "add", bridge, "type", "bridge"]);
      await run([ip, "link", "set", bridge, "up"]);
      if (rootOctet !== null) {
        await run([ip, "addr", "add", `${subnet}.${rootOctet}/24`, "dev", bridge]);
      }
      for (const h of Object.values(table)) {
        await run([ip, "netns", "add", h.ns]);
        await run([ip, "-n", h.ns, "link", "set", "lo", "up"]);
        await run([
          ip,
          "link",
          "add",
          h.veth,
          "type",
          "veth",
          "peer",
          "name",
          "eth0",
          "netns",
          h.ns,
        ]);
        await run([ip, "link", "set", h.veth, "master", bridge, "up"]);
        await run([ip, "-n", h.ns, "addr", "add", `${h.ip}/24`, "dev", "eth0"]);
        await run([ip, "-n", h.ns, "link", "set", "eth0", "up"]);
      }
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  /** Address of a host. */
  addr(host: string): string {
    const h = this.hosts[host];
    if (!h) {
      throw new Error(`expected a host of the lab (${Object.keys(this.hosts)}), found ${host}`);
    }
    return h.ip;
  }

  #ip = "ip";

  /** Namespace of a host. */
  ns(host: string): string {
    const h = this.hosts[host];
    if (!h) {
      throw new Error(`expected a host of the lab (${Object.keys(this.hosts)}), found ${host}`);
    }
    return h.ns;
  }

  /** Set the host's link down: it can reach nobody, nobody can reach it. */
  async cut(host: string): Promise<void> {
    await run([this.#ip, "-n", this.ns(host), "link", "set", "eth0", "down"]);
  }

  /** Set the host's link up again. */
  async restore(host: string): Promise<void> {
    await run([this.#ip, "-n", this.ns(host), "link", "set", "eth0", "up"]);
  }

  /** IPv4 addresses on the host's eth0. */
  async addresses(host: string): Promise<string[]> {
    const r = await run(
      [this.#ip, "-n", this.ns(host), "-o", "-4", "addr", "show", "dev", "eth0"],
      {
        check: false,
      },
    );
    return [...r.stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!);
  }

  /** Delete every namespace and the bridge (idempotent). */
  async destroy(): Promise<void> {
    for (const h of Object.values(this.hosts)) {
      await run([this.#ip, "netns", "del", h.ns], { check: false }).catch(() => {});
      await run([this.#ip, "link", "del", h.veth], { check: false }).catch(() => {});
    }
    await run([this.#ip, "link", "del", this.bridge], { check: false }).catch(() => {});
    this.#unregister();
  }
}

/** First three octets of a private /24 that no address or route of this machine mentions. */
async function _freeSubnet(ip: string): Promise<string> {
  const used = (await run([ip, "-o", "addr"], { check: false })).stdout +
    (await run([ip, "route"], { check: false })).stdout +
    (await run([ip, "-all", "netns", "exec", "ip", "-o", "addr"], { check: false })).stdout;
  for (let i = 0; i < 200; i++) {
    const subnet = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}`;
    if (!used.includes(`${subnet}.`) && !/\b10\.0\.0\.0\/8\b/.test(used)) return subnet;
  }
  throw new Error("expected a free private /24 for the network lab, found none");
}
