/**
 * The host's side of floating IPs: `ip addr` to list, add and remove an address, and an
 * announcement after an add so switches and clients update their caches at once (gratuitous
 * ARP with `arping -U -c 3 -I IF ADDR` from iputils-arping for IPv4; for IPv6 an unsolicited
 * neighbour advertisement to all nodes with the override flag and the target's link-layer
 * address, `na6 -i IF -s ADDR -d ff02::1 -t ADDR -o -e` from ipv6toolkit, as Debian's ndisc6
 * ships no `ndsend`: Deno has no raw sockets).
 *
 * {@linkcode VipHost} is the seam: {@linkcode realVipHost} runs the commands, tests give a
 * twin that keeps addresses in a map.
 *
 * @module
 */
import type { VipSpec } from "../manifest/types.ts";
import { parseCidr } from "../manifest/vip.ts";

/** What the floating-IP driver needs of the host. */
export interface VipHost {
  /** Canonical addresses on `iface` (without prefix); throws if it cannot tell. */
  list(iface: string): Promise<string[]>;
  /** Add one address (IPv6 without duplicate address detection); throws with the reason. */
  add(vip: VipSpec): Promise<void>;
  /** Remove one address; an absent one is no error. Throws with the reason otherwise. */
  remove(vip: VipSpec): Promise<void>;
  /** Announce an address just added (in the background, bounded); never throws. */
  announce(vip: VipSpec): void;
  /** Stop announcements still running (agent shutdown). */
  close(): void;
}

/** Longest a command of {@linkcode realVipHost} may take before it is killed. */
export const VIP_COMMAND_TIMEOUT_MS = 5_000;

/**
 * The real host: `ip`, `arping`, `na6`, looked up on PATH and in the sbin directories.
 *
 * @example
 * ```ts
 * const host = realVipHost();
 * const held = await host.list("eth0"); // e.g. ["10.0.0.5", "fe80::1"]
 * ```
 */
export function realVipHost(opts: { netns?: string } = {}): VipHost {
  const ipPath = findCommand("ip") ?? "ip";
  const ns = opts.netns;
  // `netns`: a named network namespace (tests): `ip -n NS`, and the announcers inside it.
  const ip = (args: string[]) => _run(ipPath, ns === undefined ? args : ["-n", ns, ...args]);
  const announcers = new Set<Deno.ChildProcess>();
  return {
    list: async (iface) => parseIpAddrShow(await ip(["-o", "addr", "show", "dev", iface])),
    add: async (v) => {
      await ip([
        "addr",
        "add",
        v.cidr,
        "dev",
        v.interface,
        ...(v.family === 6 ? ["nodad"] : []),
      ]);
    },
    remove: async (v) => {
      try {
        await ip(["addr", "del", v.cidr, "dev", v.interface]);
      } catch (err) {
        // Absent already ("Cannot assign requested address"): the wanted outcome.
        const still = await ip(["-o", "addr", "show", "dev", v.interface])
          .then(parseIpAddrShow, () => null);
        if (still === null || still.includes(v.address)) throw err;
      }
    },
    announce: (v) => {
      const tool = findCommand(v.family === 4 ? "arping" : "na6");
      if (tool === null) return; // not installed: the address works, caches update later
      const args = v.family === 4
        ? ["-U", "-c", "3", "-w", "4", "-I", v.interface, v.address]
        : ["-i", v.interface, "-s", v.address, "-d", "ff02::1", "-t", v.address, "-o", "-e"];
      try {
        // In a named namespace (tests) the announcer runs inside it, as `ip` does.
        const [cmd, argv] = ns === undefined
          ? [tool, args]
          : [ipPath, ["netns", "exec", ns, tool, ...args]];
        const child = new Deno.Command(cmd, {
          args: argv,
          stdin: "null",
          stdout: "null",
          stderr: "null",
        })
          .spawn();
        announcers.add(child);
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
        }, VIP_COMMAND_TIMEOUT_MS);
        child.status.finally(() => {
          clearTimeout(timer);
          announcers.delete(child);
        }).catch(() => {});
      } catch { /* cannot run it: the address works, caches update later */ }
    },
    close: () => {
      for (const child of announcers) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }
    },
  };
}

/**
 * The canonical addresses in the output of `ip -o addr show` (`inet 10.0.0.5/24 ...`,
 * `inet6 fe80::1/64 ...`).
 *
 * @example
 * ```ts
 * parseIpAddrShow("2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\n");
 * // ["10.0.0.5"]
 * ```
 */
export function parseIpAddrShow(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\sinet6?\s+(\S+)/g)) {
    const c = parseCidr(m[1]!.includes("/") ? m[1]! : `${m[1]}/${m[1]!.includes(":") ? 128 : 32}`);
    if (typeof c !== "string") out.push(c.address);
  }
  return out;
}

/** Path of an executable on PATH or in the sbin directories, or null. */
export function findCommand(name: string): string | null {
  const dirs = [
    ...(Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== ""),
    "/usr/sbin",
    "/sbin",
    "/usr/bin",
    "/bin",
  ];
  for (const dir of dirs) {
    try {
      const info = Deno.statSync(`${dir}/${name}`);
      if (info.isFile && info.mode !== null && (info.mode & 0o111) !== 0) return `${dir}/${name}`;
    } catch { /* not here */ }
  }
  return null;
}

async function _run(cmd: string, args: string[]): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, VIP_COMMAND_TIMEOUT_MS);
  try {
    const r = await child.output();
    const dec = new TextDecoder();
    if (!r.success) {
      const why = dec.decode(r.stderr).trim() || `exit ${r.code}`;
      throw new Error(`\`${cmd} ${args.join(" ")}\`: ${why}`);
    }
    return dec.decode(r.stdout);
  } finally {
    clearTimeout(timer);
  }
}
