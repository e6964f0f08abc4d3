/**
 * Where the CLI finds the manifest, the same for every command (`run`, `status`, `validate`,
 * `reload`, `switchover`, `witness`, …): `--manifest`/the FILE argument, else
 * `$BATON_MANIFEST`, else `./baton.yaml` if it exists, else the installed
 * `/etc/baton/baton.yaml` (the path of `examples/baton.service`) if it exists, else
 * `./baton.yaml` (so the error names the file a newcomer expects).
 *
 * The installed path can be moved with `$BATON_SYSTEM_MANIFEST` (tests use it).
 *
 * @module
 */

/** The installed manifest (the path `examples/baton.service` runs with). */
export const SYSTEM_MANIFEST = "/etc/baton/baton.yaml";

/** Inputs of {@linkcode resolveManifestPath}, so the lookup is testable without a filesystem. */
export interface ManifestLookup {
  /** `--manifest` or the command's FILE argument. */
  flag: string | undefined;
  /** `$BATON_MANIFEST`. */
  env: string | undefined;
  /** `$BATON_SYSTEM_MANIFEST`, else {@linkcode SYSTEM_MANIFEST}. */
  systemPath: string;
  /** Whether a file exists. */
  exists: (path: string) => boolean;
}

/**
 * The manifest path the CLI uses.
 *
 * @example
 * ```ts
 * resolveManifestPath({
 *   flag: undefined,
 *   env: undefined,
 *   systemPath: "/etc/baton/baton.yaml",
 *   exists: (p) => p === "/etc/baton/baton.yaml",
 * }); // "/etc/baton/baton.yaml"
 * ```
 */
export function resolveManifestPath(l: ManifestLookup): string {
  if (l.flag !== undefined && l.flag !== "") return l.flag;
  if (l.env !== undefined && l.env !== "") return l.env;
  if (l.exists("baton.yaml")) return "baton.yaml";
  if (l.exists(l.systemPath)) return l.systemPath;
  return "baton.yaml";
}

/** {@linkcode resolveManifestPath} with this process's environment and filesystem. */
export function manifestPath(flag: string | undefined): string {
  return resolveManifestPath({
    flag,
    env: Deno.env.get("BATON_MANIFEST"),
    systemPath: Deno.env.get("BATON_SYSTEM_MANIFEST") || SYSTEM_MANIFEST,
    exists: fileExists,
  });
}

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The help text of a `--manifest` option or FILE argument. */
export const MANIFEST_HELP =
  "manifest file (default: $BATON_MANIFEST, else ./baton.yaml, else /etc/baton/baton.yaml)";
