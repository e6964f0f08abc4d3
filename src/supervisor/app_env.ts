/**
 * The environment an app starts with: never the agent's own. The agent's environment may hold
 * the cluster secret (`BATON_SECRET` in development, `CREDENTIALS_DIRECTORY` under systemd),
 * systemd's sockets, and whatever the operator's shell had; an app gets only a short allowlist
 * of it (`PATH`, `LANG`, `LC_*`, `TZ`), `HOME`, `USER` and `LOGNAME` of the user it runs as,
 * the variables its manifest entry names in `inheritEnv`, then its manifest `env` and the
 * `BATON_*` variables the agent sets. `BATON_SECRET` and `CREDENTIALS_DIRECTORY` are dropped
 * from every source.
 *
 * @example
 * ```ts
 * appEnvironment({
 *   agentEnv: { PATH: "/usr/bin", BATON_SECRET: "s3cr3t", JAVA_HOME: "/opt/jdk" },
 *   inherit: ["JAVA_HOME"],
 *   user: { name: "nobody", home: "/nonexistent" },
 *   env: { PORT: "8080", BATON_APP: "web" },
 * });
 * // → { PATH: "/usr/bin", JAVA_HOME: "/opt/jdk", HOME: "/nonexistent", USER: "nobody",
 * //     LOGNAME: "nobody", PORT: "8080", BATON_APP: "web" }
 * ```
 *
 * @module
 */

/** Variables of the agent every app gets (plus every `LC_*`). */
export const BASE_ENV = ["PATH", "LANG", "LANGUAGE", "TZ"];

/** Never passed to an app, from any source: they hold or lead to the cluster secret. */
export const SECRET_ENV_NAMES = ["BATON_SECRET", "CREDENTIALS_DIRECTORY"];

/** dash's PATH when the agent has none. */
const _DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Inputs of {@linkcode appEnvironment}. */
export interface AppEnvInput {
  /** The agent's environment (`Deno.env.toObject()`). */
  agentEnv: Record<string, string>;
  /** `inheritEnv`: more names taken from the agent's environment. */
  inherit: readonly string[];
  /** The user the app runs as: HOME, USER and LOGNAME. */
  user: { name: string; home: string };
  /** The app's manifest `env` and the agent's `BATON_*` variables; they win over the rest. */
  env: Record<string, string>;
}

/**
 * Builds the complete environment of an app (see the module doc for what goes in).
 *
 * @example
 * ```ts
 * appEnvironment({ agentEnv: {}, inherit: [], user: { name: "root", home: "/root" }, env: {} })
 *   .PATH; // "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
 * ```
 */
export function appEnvironment(input: AppEnvInput): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.agentEnv)) {
    if (BASE_ENV.includes(name) || name.startsWith("LC_")) out[name] = value;
  }
  out["PATH"] ??= _DEFAULT_PATH;
  for (const name of input.inherit) {
    const value = input.agentEnv[name];
    if (value !== undefined) out[name] = value;
  }
  out["HOME"] = input.user.home;
  out["USER"] = input.user.name;
  out["LOGNAME"] = input.user.name;
  Object.assign(out, input.env);
  for (const name of SECRET_ENV_NAMES) delete out[name];
  return out;
}

/**
 * HOME and the name of the agent's own user, for apps without `user:` (`/etc/passwd` entry of
 * the agent's uid, else its own HOME/USER, else "/" and the uid).
 *
 * @example
 * ```ts
 * agentUser().name; // "root" when the agent runs as root
 * ```
 */
export function agentUser(): { name: string; home: string } {
  // The agent's uid never changes: read /etc/passwd once.
  return _agentUser ??= _readAgentUser();
}

let _agentUser: { name: string; home: string } | null = null;

function _readAgentUser(): { name: string; home: string } {
  const uid = Deno.uid();
  let passwd = "";
  try {
    passwd = Deno.readTextFileSync("/etc/passwd");
  } catch { /* none: fall back to the environment */ }
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f.length >= 7 && Number(f[2]) === uid && /^\d+$/.test(f[2]!)) {
      return { name: f[0]!, home: f[5] || "/" };
    }
  }
  return {
    name: Deno.env.get("USER") ?? String(uid ?? ""),
    home: Deno.env.get("HOME") ?? "/",
  };
}
