/**
 * Loading and generating the cluster's shared secret. The secret itself is never put in an
 * error or warning message.
 *
 * @example
 * ```ts
 * const loaded = await loadSecret({ env: Deno.env.get("BATON_SECRET"), file: "/etc/baton/secret" });
 * if (!loaded.ok) throw new Error(loaded.error);
 * ```
 *
 * @module
 */

/** Shortest secret accepted, in characters. */
export const MIN_SECRET_LENGTH = 16;

/** Name of the environment variable that overrides the secret file. */
export const SECRET_ENV = "BATON_SECRET";

/** Result of {@linkcode loadSecret}; `source` says where the secret came from. */
export type LoadSecretResult =
  | { ok: true; secret: string; source: string; warning?: string }
  | { ok: false; error: string };

function _checkLength(secret: string, source: string): string | null {
  if (secret.length >= MIN_SECRET_LENGTH) return null;
  return `secret from ${source} is too short: expected at least ${MIN_SECRET_LENGTH} characters, ` +
    `found ${secret.length} (generate one with \`baton init\`)`;
}

/**
 * Loads the shared secret: `env` (the value of BATON_SECRET) wins when set, else the file
 * (`cluster.secret_file`), trimmed of surrounding whitespace. Secrets shorter than
 * {@linkcode MIN_SECRET_LENGTH} are rejected. A file readable by group or others loads, with
 * a `warning`.
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
  opts: { env: string | undefined; file: string | null },
): Promise<LoadSecretResult> {
  if (opts.env !== undefined) {
    const secret = opts.env.trim();
    const source = `environment variable ${SECRET_ENV}`;
    const tooShort = _checkLength(secret, source);
    if (tooShort !== null) return { ok: false, error: tooShort };
    return { ok: true, secret, source };
  }
  if (opts.file === null) {
    return {
      ok: false,
      error:
        `no shared secret: expected ${SECRET_ENV} in the environment or cluster.secret_file in ` +
        `the manifest, found neither`,
    };
  }
  const file = opts.file;
  const source = `file ${file}`;
  let mode: number | null;
  let text: string;
  try {
    const info = await Deno.stat(file);
    if (!info.isFile) {
      const found = info.isDirectory ? "a directory" : "something else";
      return { ok: false, error: `secret file ${file}: expected a regular file, found ${found}` };
    }
    mode = info.mode;
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
  const secret = text.trim();
  const tooShort = _checkLength(secret, source);
  if (tooShort !== null) return { ok: false, error: tooShort };
  if (mode !== null && (mode & 0o077) !== 0) {
    const shown = (mode & 0o777).toString(8).padStart(3, "0");
    return {
      ok: true,
      secret,
      source,
      warning: `secret file ${file} is readable by group or others (mode ${shown}); ` +
        `expected 600: chmod 600 ${file}`,
    };
  }
  return { ok: true, secret, source };
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
