/**
 * Whether this machine lets the tests create cgroup v2 groups (root with a writable v2 mount):
 * decided once, for a test's `ignore:` (so CI, which fails skipped tests, says it is missing).
 *
 * @module
 */
import { openNodeCgroups, removeClusterCgroups } from "../../src/supervisor/cgroup.ts";

let probed: boolean | null = null;

/** True when a node's cgroup tree can be created here (probed once, then removed). */
export function cgroupsWritable(): boolean {
  if (probed === null) {
    const name = `gprobe${Deno.pid}`;
    probed = openNodeCgroups(name, "n") !== null;
    removeClusterCgroups(name);
  }
  return probed;
}
