/**
 * Loading and generating the cluster's shared secret. The secret itself is never put in an
 * error or warning message.
 *
 * Where it comes from, first found wins:
 * 1. `BATON_SECRET` (development): it then sits in the agent's `/proc/<pid>/environ` for its
 *    whole life (`Deno.env.delete` does not change that), readable by every process of the
 *    agent's user; the load returns a warning, which status shows.
 * 2. A systemd credential (`LoadCredential=baton.secret:/etc/baton/secret` in the unit): the
 *    file `$CREDENTIALS_DIRECTORY/baton.secret`, on a private mount only the service sees.
 * 3. `cluster.secretFile`.
 * A secret file (or credential) that is readable by group or others, or not owned by the
 * agent's user, is an error: apps run as other users must not be able to read it.
 *
 * @example
 * ```ts
 * const loaded = await loadSecret({
 *   env: Deno.env.get("BATON_SECRET"),
 *   credentialsDir: Deno.env.get("CREDENTIALS_DIRECTORY"),
 *   file: "/etc/baton/secret",
 * });
 * if (!loaded.ok) throw new Error(loaded.error);
 * ```
 *
 * @module
 */

/** Shortest secret accepted, in characters. */
export const MIN_SECRET_LENGTH = 16;

/** Name of the environment variable that overrides the secret file. */
export const SECRET_ENV = "BATON_SECRET";

/** Name of the systemd credential that holds the secret (`LoadCredential=baton.secret:…`). */
export const SECRET_CREDENTIAL = "baton.secret";

/** Result of {@linkcode loadSecret}; `source` says where the secret came from. */
export type LoadSecretResult =
  | { ok: true; secret: string; source: string; warning?: string; file?: string }
  | { ok: false; error: string };

function _checkLength(secret: string, source: string): string | null {
  if (secret.length >= MIN_SECRET_LENGTH) return null;
  return `secret from ${source} is too short: expected at least ${MIN_SECRET_LENGTH} characters, ` +
    `found ${secret.length} (generate one with \`baton init\`)`;
}

/**
 * Loads the shared secret: `env` (the value of BATON_SECRET) wins when set, with a `warning`;
 * else the credential `baton.secret` in `credentialsDir` ($CREDENTIALS_DIRECTORY) if it
 * exists; else the file (`cluster.secretFile`); trimmed of surrounding whitespace. Secrets
 * shorter than {@linkcode MIN_SECRET_LENGTH} are rejected, and so is a file readable by group
 * or others or not owned by the agent's user.
 *
 * An environment variable that is set but empty is an error rather than a silent fallback
 * to the file, so a mistyped deployment does not run with a secret nobody meant.
 *
 * @example
 * ```ts
 * const r = await loadSecret({ env: undefined, file: "/etc/baton/secret" });
 * if (r.ok && r.warning) console.warn(r.warning);
 * ```
 */
export async function loadSecret(
  opts: { env: string | undefined; file: string | null; credentialsDir?: string | undefined },
): Promise<LoadSecretResult> {
  if (opts.env !== undefined) {
    const secret = opts.env.trim();
    const source = `environment variable ${SECRET_ENV}`;
    const tooShort = _checkLength(secret, source);
    if (tooShort !== null) return { ok: false, error: tooShort };
    return { ok: true, secret, source, warning: ENV_SECRET_WARNING };
  }
  if (opts.credentialsDir !== undefined && opts.credentialsDir !== "") {
    const credential = `${opts.credentialsDir.replace(/\/+$/, "")}/${SECRET_CREDENTIAL}`;
    try {
      await Deno.lstat(credential);
      return await _loadFile(credential, `systemd credential ${credential}`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        return { ok: false, error: `secret credential ${credential}: ${(err as Error).message}` };
      }
    }
  }
  if (opts.file === null) {
    return {
      ok: false,
      error:
        `no shared secret: expected ${SECRET_ENV} in the environment or cluster.secret_file in ` +
        `the manifest, found neither`,
    };
  }
  return await _loadFile(opts.file, `file ${opts.file}`);
}

/** Status warning of a secret taken from BATON_SECRET. */
export const ENV_SECRET_WARNING =
  `the cluster secret comes from ${SECRET_ENV}: every process of the agent's user can read ` +
  "it in the agent's /proc/<pid>/environ (apps get a clean environment, other processes do " +
  "not); for production pass it as a systemd credential (LoadCredential=baton.secret:FILE) " +
  "or with cluster.secretFile";

async function _loadFile(file: string, source: string): Promise<LoadSecretResult> {
  let mode: number | null;
  let owner: number | null;
  let text: string;
  try {
    const info = await Deno.stat(file);
    if (!info.isFile) {
      const found = info.isDirectory ? "a directory" : "something else";
      return { ok: false, error: `secret file ${file}: expected a regular file, found ${found}` };
    }
    mode = info.mode;
    owner = info.uid;
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return { ok: false, error: `secret file ${file} not found` };
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      return { ok: false, error: `secret file ${file}: permission denied` };
    }
    return { ok: false, error: `secret file ${file}: ${(err as Error).message}` };
  }
  const unsafe = _unsafeFile(file, mode, owner);
  if (unsafe !== null) return { ok: false, error: unsafe };
  const secret = text.trim();
  const tooShort = _checkLength(secret, source);
  if (tooShort !== null) return { ok: false, error: tooShort };
  return { ok: true, secret, source, file };
}

/** Why a secret file with this mode and owner may be read by others, or null. */
function _unsafeFile(file: string, mode: number | null, owner: number | null): string | null {
  if (mode !== null && (mode & 0o077) !== 0) {
    const shown = (mode & 0o777).toString(8).padStart(3, "0");
    return `secret file ${file} is readable by group or others (mode ${shown}): expected ` +
      `mode 600 or 400, so no app and no other user can read it: chmod 600 ${file}`;
  }
  const me = Deno.uid();
  if (owner !== null && me !== null && owner !== me) {
    return `secret file ${file} is owned by uid ${owner}: expected the agent's user (uid ` +
      `${me}), so no other user can change or read it: chown ${me} ${file}`;
  }
  return null;
}

/**
 * Checks that a secret file is still safe (mode and owner, as {@linkcode loadSecret} does),
 * without reading it: for `reload`. Returns the error, or null.
 *
 * @example
 * ```ts
 * const bad = await checkSecretFile("/etc/baton/secret");
 * if (bad !== null) console.error(bad);
 * ```
 */
export async function checkSecretFile(file: string): Promise<string | null> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(file);
  } catch (err) {
    return `secret file ${file}: ${(err as Error).message}`;
  }
  return _unsafeFile(file, info.mode, info.uid);
}

/**
 * Returns a new random secret: 32 bytes from the system CSPRNG, base64url without padding
 * (43 characters). Used by `baton init`.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile("secret", generateSecret() + "\n", { mode: 0o600 });
 * ```
 */
export function generateSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
