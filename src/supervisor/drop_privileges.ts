/**
 * Dropping an app's privileges before it runs (`apps.X.user` / `group`). The app is started
 * through util-linux `setpriv --reuid U --regid G --clear-groups --`, which the launcher
 * execs last, after it has joined the app's cgroup and opened the app's log as the agent
 * (real_runner.ts): an app running as `nobody` can then write its log, yet cannot read the
 * state directory it lives in. `setresgid`, `setgroups(0)` and `setresuid` happen in that
 * order, all three ids (real, effective, saved) change, and a non-root uid loses every
 * capability, so the app cannot regain root.
 *
 * Why not `Deno.Command`'s `uid`/`gid` options: they do clear the supplementary groups (Rust's
 * std calls `setgroups(0)`), but they apply to the launcher shell itself, which then could not
 * join the root-owned cgroup nor open the log in the agent's 0700 state directory; and they
 * make Deno fork the whole agent to run the pre-exec hook instead of using posix_spawn.
 *
 * @example
 * ```ts
 * privilegePrefix({ uid: 65534, gid: 65534, name: "nobody", home: "/nonexistent" }, 0);
 * // → ["/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"]
 * ```
 *
 * @module
 */
import type { RunAs } from "../manifest/types.ts";

/** util-linux setpriv, if installed. */
export const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((path) => {
  try {
    const info = Deno.statSync(path);
    return info.isFile && info.mode !== null && (info.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}) ?? null;

/**
 * argv to put before the app's command so it runs as `runAs` (empty without `runAs`). Throws a
 * clear error when that is impossible: no setpriv, or an agent that is not root asked to run
 * an app as another user.
 *
 * @example
 * ```ts
 * privilegePrefix(undefined, 1000); // []
 * privilegePrefix({ uid: 1000, gid: 1000, name: "app", home: "/home/app" }, 1000); // []
 * ```
 */
export function privilegePrefix(
  runAs: RunAs | undefined,
  agentUid: number | null,
  setpriv: string | null = SETPRIV,
): string[] {
  if (runAs === undefined) return [];
  // Already that user: nothing to drop (and only root may change its groups).
  if (agentUid !== 0 && agentUid === runAs.uid) return [];
  if (agentUid !== 0) {
    throw new Error(
      `expected the agent to run as root to start it as user ${runAs.name} (uid ${runAs.uid}), ` +
        `found the agent running as uid ${agentUid}`,
    );
  }
  if (setpriv === null) {
    throw new Error(
      `user: ${runAs.name} needs util-linux setpriv to drop privileges, found none in ` +
        "/usr/bin or /bin (apt-get install util-linux)",
    );
  }
  return [
    setpriv,
    "--reuid",
    String(runAs.uid),
    "--regid",
    String(runAs.gid),
    "--clear-groups",
    "--",
  ];
}
