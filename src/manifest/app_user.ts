/**
 * `apps.X.user` and `apps.X.group`: names or numeric ids, resolved to the ids an app runs as.
 * Names are looked up in `/etc/passwd` and `/etc/group` (the files, not NSS: the agent must
 * resolve them the same way at every start, with no directory service to wait for). A numeric
 * id needs no entry; a numeric user without one needs `group:` too (it has no primary group).
 *
 * @example
 * ```ts
 * const db = parseUserDb("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", "");
 * resolveRunAs("nobody", undefined, db);
 * // → { ok: true, runAs: { uid: 65534, gid: 65534, name: "nobody", home: "/nonexistent" } }
 * ```
 *
 * @module
 */
import type { RunAs } from "./types.ts";

/** The users and groups ids are resolved against. */
export interface UserDb {
  users: { name: string; uid: number; gid: number; home: string }[];
  groups: { name: string; gid: number }[];
}

/** Result of {@linkcode resolveRunAs}: the ids, or an error on the `user` or `group` key. */
export type RunAsResult =
  | { ok: true; runAs: RunAs }
  | { ok: false; key: "user" | "group"; message: string };

/**
 * Parses the text of `/etc/passwd` and `/etc/group` (malformed lines are skipped).
 *
 * @example
 * ```ts
 * parseUserDb("root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\n").groups; // [{ name: "root", gid: 0 }]
 * ```
 */
export function parseUserDb(passwd: string, group: string): UserDb {
  const users: UserDb["users"] = [];
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f.length < 7 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    users.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! || "/" });
  }
  const groups: UserDb["groups"] = [];
  for (const line of group.split("\n")) {
    const f = line.split(":");
    if (f.length < 3 || !/^\d+$/.test(f[2]!)) continue;
    groups.push({ name: f[0]!, gid: Number(f[2]) });
  }
  return { users, groups };
}

/**
 * This host's users and groups (`/etc/passwd`, `/etc/group`; a missing file is empty).
 *
 * @example
 * ```ts
 * systemUserDb().users.find((u) => u.uid === 0)?.name; // "root"
 * ```
 */
export function systemUserDb(): UserDb {
  const read = (path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return "";
    }
  };
  return parseUserDb(read("/etc/passwd"), read("/etc/group"));
}

/** Largest id accepted (2^32 − 2: −1 means "unchanged" to setresuid). */
export const MAX_ID = 4_294_967_294;

/**
 * Resolves `user` and `group` (names, numbers or digit strings) against `db`.
 *
 * @example
 * ```ts
 * resolveRunAs(1000, 1000, { users: [], groups: [] });
 * // → { ok: true, runAs: { uid: 1000, gid: 1000, name: "1000", home: "/" } }
 * resolveRunAs("nosuchuser", undefined, { users: [], groups: [] }).ok; // false
 * ```
 */
export function resolveRunAs(
  user: string | number | undefined,
  group: string | number | undefined,
  db: UserDb,
): RunAsResult {
  if (user === undefined) {
    return {
      ok: false,
      key: "group",
      message: "group: needs user: too (the app would otherwise run as the agent's user)",
    };
  }
  const uid = _id(user);
  const entry = uid !== null
    ? db.users.find((u) => u.uid === uid)
    : db.users.find((u) => u.name === user);
  if (uid === null && entry === undefined) {
    return {
      ok: false,
      key: "user",
      message: `unknown user "${user}": expected a user of /etc/passwd or a numeric uid`,
    };
  }
  let gid: number | null = entry?.gid ?? null;
  if (group !== undefined) {
    const id = _id(group);
    const g = id !== null ? { gid: id } : db.groups.find((x) => x.name === group);
    if (g === undefined) {
      return {
        ok: false,
        key: "group",
        message: `unknown group "${group}": expected a group of /etc/group or a numeric gid`,
      };
    }
    gid = g.gid;
  }
  if (gid === null) {
    return {
      ok: false,
      key: "user",
      message: `uid ${uid} has no entry in /etc/passwd, so no primary group: expected group: too`,
    };
  }
  return {
    ok: true,
    runAs: {
      uid: entry?.uid ?? uid!,
      gid,
      name: entry?.name ?? String(uid),
      home: entry?.home ?? "/",
    },
  };
}

/** A numeric id (a number or a string of digits), or null for a name. */
function _id(value: string | number): number | null {
  if (typeof value === "number") return value;
  return /^\d+$/.test(value) ? Number(value) : null;
}
