/**
 * The boot fact: whether the host rebooted since the agent last ran. The kernel gives every
 * boot a random id (`/proc/sys/kernel/random/boot_id`); the agent keeps the one it last saw in
 * its state directory (`boot_id`) and compares. The path is configurable
 * (`BATON_BOOT_ID_FILE`) so tests can fake a reboot.
 *
 * @module
 */

/** Where the kernel publishes the id of the current boot. */
export const KERNEL_BOOT_ID = "/proc/sys/kernel/random/boot_id";

/** The boot id file to read: `BATON_BOOT_ID_FILE`, else the kernel's. */
export function bootIdPath(env: (name: string) => string | undefined = Deno.env.get): string {
  const given = env("BATON_BOOT_ID_FILE");
  return given !== undefined && given !== "" ? given : KERNEL_BOOT_ID;
}

/**
 * Compare the current boot id with the one recorded in `stateDir`, then record the current one.
 * Returns true (rebooted), false (same boot: only the agent restarted) or null (unknown: no
 * earlier record, or the id cannot be read).
 *
 * @example
 * ```ts
 * const reboot = await checkReboot("/var/lib/baton"); // true after a reboot
 * ```
 */
export async function checkReboot(
  stateDir: string,
  path: string = bootIdPath(),
): Promise<boolean | null> {
  let current: string;
  try {
    current = (await Deno.readTextFile(path)).trim();
  } catch {
    return null;
  }
  if (current === "") return null;
  const file = `${stateDir.replace(/(.)\/+$/, "$1")}/boot_id`;
  let previous: string | null = null;
  try {
    previous = (await Deno.readTextFile(file)).trim();
  } catch { /* first run */ }
  if (previous !== current) {
    try {
      const tmp = `${file}.tmp`;
      await Deno.writeTextFile(tmp, current + "\n", { mode: 0o600 });
      await Deno.rename(tmp, file);
    } catch { /* unknown next time: no worse than today */ }
  }
  return previous === null || previous === "" ? null : previous !== current;
}
