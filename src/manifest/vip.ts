/**
 * Floating IP addresses (`cluster.vip`): their schema and the address arithmetic behind it.
 * Each entry is `{ address: 10.0.0.100/24, interface: eth0 }` (IPv4 or IPv6, CIDR notation);
 * the active holds every one of them while its movable apps may run.
 *
 * Addresses come out in canonical form (IPv6 as RFC 5952: lower case, no leading zeros, the
 * longest run of zero groups as `::`), the form `ip -o addr` prints, so a held address is
 * found by plain string comparison.
 *
 * @example
 * ```ts
 * parseCidr("2001:DB8:0:0::1/64"); // { address: "2001:db8::1", prefix: 64, family: 6 }
 * parseCidr("10.0.0.100/33"); // "expected a prefix length 0..32 after the IPv4 address, found 33"
 * ```
 *
 * @module
 */
import { z } from "zod";
import type { VipSpec } from "./types.ts";

/** A Linux interface name: 1–15 characters (IFNAMSIZ − 1), no `/`, `:` or whitespace. */
export const INTERFACE_PATTERN: RegExp = /^[A-Za-z0-9_.-]{1,15}$/;

/** An address with its prefix length, canonical. */
export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

/**
 * Parse `ADDRESS/PREFIX` (IPv4 or IPv6); returns the canonical parts, or a sentence saying
 * what was expected and what was found.
 *
 * @example
 * ```ts
 * const c = parseCidr("10.0.0.100/24");
 * if (typeof c !== "string") console.log(`${c.address}/${c.prefix}`); // 10.0.0.100/24
 * ```
 */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf("/");
  if (slash < 0) {
    return `expected an address with its prefix length such as 10.0.0.100/24 or ` +
      `2001:db8::100/64, found ${JSON.stringify(text)} (no "/")`;
  }
  const addr = text.slice(0, slash);
  const len = text.slice(slash + 1);
  const ip = parseIp(addr);
  if (ip === null) {
    return `expected an IPv4 or IPv6 address before "/", found ${JSON.stringify(addr)}`;
  }
  const max = ip.family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(len) || Number(len) > max) {
    return `expected a prefix length 0..${max} after the IPv${ip.family} address, found ${
      JSON.stringify(len)
    }`;
  }
  return { address: ip.address, prefix: Number(len), family: ip.family };
}

/**
 * Parse one IPv4 (dotted quad) or IPv6 address into its canonical form; null if it is none.
 *
 * @example
 * ```ts
 * parseIp("fe80:0000::0001"); // { address: "fe80::1", family: 6 }
 * ```
 */
export function parseIp(text: string): { address: string; family: 4 | 6 } | null {
  const v4 = _parseV4(text);
  if (v4 !== null) return { address: v4.join("."), family: 4 };
  const v6 = _parseV6(text);
  if (v6 === null) return null;
  return { address: _formatV6(v6), family: 6 };
}

function _parseV4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p.startsWith("0")) || Number(p) > 255) {
      return null;
    }
    out.push(Number(p));
  }
  return out;
}

function _parseV6(text: string): number[] | null {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = _parseV4(p);
        if (v4 === null) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const zeros = 8 - head.length - tail.length;
  if (zeros < 1) return null;
  return [...head, ...new Array<number>(zeros).fill(0), ...tail];
}

function _formatV6(g: number[]): string {
  // The longest run of two or more zero groups (the first of equal ones) becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** One entry of `cluster.vip`. */
export const VipSchema = z.strictObject({
  address: z.string({ error: (iss) => _expectedCidr(iss.input) }).superRefine((text, ctx) => {
    const c = parseCidr(text);
    if (typeof c === "string") ctx.addIssue({ code: "custom", message: c, input: text });
  }),
  interface: z.string({
    error: (iss) => iss.input === undefined ? undefined : _expectedIf(iss.input),
  }).superRefine((text, ctx) => {
    if (!INTERFACE_PATTERN.test(text) || text === "." || text === "..") {
      ctx.addIssue({ code: "custom", message: _expectedIf(text), input: text });
    }
  }),
}, {
  error: (iss) =>
    iss.input === undefined
      ? undefined
      : `expected a floating IP mapping { address: 10.0.0.100/24, interface: eth0 }, found ${
        _describe(iss.input)
      }`,
});

/** `cluster.vip`: a list of floating IPs, each address at most once. */
export const VipListSchema = z.array(VipSchema, {
  error: (iss) =>
    iss.input === undefined ? undefined : `expected a list of floating IPs such as ` +
      `[{ address: 10.0.0.100/24, interface: eth0 }], found ${_describe(iss.input)}`,
}).superRefine((list, ctx) => {
  const seen = new Map<string, number>();
  list.forEach((v, i) => {
    const c = parseCidr(v.address);
    if (typeof c === "string") return;
    const first = seen.get(c.address);
    if (first !== undefined) {
      ctx.addIssue({
        code: "custom",
        message: `expected each floating IP once, found ${c.address} again (entry ${first + 1})`,
        path: [i, "address"],
        input: v.address,
      });
    } else {
      seen.set(c.address, i);
    }
  });
});

/**
 * The normalized list of the schema's output (which it has validated).
 *
 * @example
 * ```ts
 * toVipSpecs([{ address: "10.0.0.100/24", interface: "eth0" }])[0]?.cidr; // "10.0.0.100/24"
 * ```
 */
export function toVipSpecs(raw: { address: string; interface: string }[]): VipSpec[] {
  return raw.map((v) => {
    const c = parseCidr(v.address);
    if (typeof c === "string") throw new Error(`unvalidated floating IP: ${c}`);
    return { ...c, cidr: `${c.address}/${c.prefix}`, interface: v.interface };
  });
}

function _expectedCidr(input: unknown): string | undefined {
  if (input === undefined) return undefined;
  return `expected an address with its prefix length such as 10.0.0.100/24, ` +
    `found ${_describe(input)}`;
}

function _expectedIf(input: unknown): string {
  return `expected an interface name (1-15 letters, digits, "_", "-" or ".") such as eth0, ` +
    `found ${_describe(input)}`;
}

function _describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `the ${typeof value} ${String(value)}`;
}
