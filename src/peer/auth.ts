/**
 * HMAC authentication of requests between baton nodes (and to the witness) with the cluster's
 * shared secret.
 *
 * The sender adds four headers:
 * - `X-Baton-Node`: its node name,
 * - `X-Baton-Time`: unix milliseconds, decimal,
 * - `X-Baton-Nonce`: 16 random bytes, lowercase hex,
 * - `X-Baton-To`: the `host:port` the request is sent to (the receiver's URL in the manifest),
 * - `X-Baton-Signature`: lowercase hex HMAC-SHA256(secret, canonical), where canonical is
 *   `${METHOD}\n${to}\n${pathWithQuery}\n${node}\n${time}\n${nonce}\n${hex sha256(body)}`.
 *
 * Signing the receiver means a request captured on its way to alpha cannot be replayed to
 * beta: a verifier built with `hosts` accepts only requests signed for one of them.
 *
 * The receiver rejects a request whose headers are missing or malformed, whose time is more
 * than `maxSkewMs` away from its own clock ("stale"), whose signature does not match ("bad
 * signature", compared in constant time by `crypto.subtle.verify`), or whose nonce it has
 * already accepted inside the window ("replayed"). Reasons never contain the secret or the
 * expected signature.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * const secret = "s3cret"; // the cluster's shared secret (peer/secret.ts loads it)
 * const body = JSON.stringify({ node: "alpha" });
 * const headers = await signRequest(secret, "alpha", "POST", "/v1/heartbeat", body);
 * const app = new Hono<{ Variables: AuthVariables }>();
 * const verifier = new RequestVerifier(secret);
 * app.use("/v1/*", hmacAuth(verifier));
 * await app.request("/v1/heartbeat", { method: "POST", headers, body });
 * ```
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { ReplayCache } from "./replay_cache.ts";

/** Header carrying the receiver's `host:port`, covered by the signature. */
export const HEADER_TO = "X-Baton-To";

/** Header carrying the sender's node name. */
export const HEADER_NODE = "X-Baton-Node";
/** Header carrying the sender's unix time in milliseconds. */
export const HEADER_TIME = "X-Baton-Time";
/** Header carrying 16 random bytes in hex, unique per request. */
export const HEADER_NONCE = "X-Baton-Nonce";
/** Header carrying the hex HMAC-SHA256 signature. */
export const HEADER_SIGNATURE = "X-Baton-Signature";

/** Header carrying the signature of a reply (see {@linkcode signReply}). */
export const HEADER_REPLY_SIGNATURE = "X-Baton-Reply-Signature";

/**
 * Default accepted distance between the sender's and the receiver's clocks. Narrow: a captured
 * request can be replayed only inside it (and never to an agent started after it was signed).
 */
export const DEFAULT_MAX_SKEW_MS = 5_000;
/**
 * Largest request body {@linkcode hmacAuth} reads before the signature is checked; larger
 * bodies get 413. Every message of the protocol fits many times over.
 */
export const MAX_BODY_BYTES = 64 * 1024;

const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const TIME_RE = /^[0-9]{1,16}$/;
const NONCE_RE = /^[0-9a-f]{32}$/;
const SIGNATURE_RE = /^[0-9a-f]{64}$/;

const encoder = new TextEncoder();
/** One imported key per secret: importKey runs once, later calls reuse the promise. */
const keyCache = new Map<string, Promise<CryptoKey>>();

function _hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (key === undefined) {
    key = crypto.subtle.importKey(
      "raw",
      encoder.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    keyCache.set(secret, key);
  }
  return key;
}

function _hex(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let out = "";
  for (const b of view) out += b.toString(16).padStart(2, "0");
  return out;
}

function _unhex(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

async function _canonical(
  method: string,
  to: string,
  pathWithQuery: string,
  node: string,
  time: string,
  nonce: string,
  body: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const bodyHash = _hex(await crypto.subtle.digest("SHA-256", encoder.encode(body)));
  return encoder.encode(
    `${method.toUpperCase()}\n${to}\n${pathWithQuery}\n${node}\n${time}\n${nonce}\n${bodyHash}`,
  );
}

/**
 * Returns the four `X-Baton-*` headers that authenticate one request.
 *
 * `pathWithQuery` must be exactly what the receiver sees (`/v1/heartbeat?x=1`), and `body`
 * exactly the text sent ("" for none).
 *
 * @example
 * ```ts
 * const secret = "s3cret"; // the cluster's shared secret (peer/secret.ts loads it)
 * const url = "http://beta:7946/v1/heartbeat";
 * const body = JSON.stringify({ node: "alpha" });
 * const headers = await signRequest(secret, "alpha", "POST", "/v1/heartbeat", body);
 * await fetch(url, { method: "POST", headers, body });
 * ```
 */
export async function signRequest(
  secret: string,
  node: string,
  method: string,
  pathWithQuery: string,
  body: string,
  now: number = Date.now(),
  to = "",
): Promise<Record<string, string>> {
  if (!NODE_RE.test(node)) {
    throw new Error(
      `signRequest: expected a node name of letters, digits, '.', '_' or '-', got ${
        JSON.stringify(node)
      }`,
    );
  }
  const time = String(Math.trunc(now));
  const nonce = _hex(crypto.getRandomValues(new Uint8Array(16)));
  const canonical = await _canonical(method, to, pathWithQuery, node, time, nonce, body);
  const signature = await crypto.subtle.sign("HMAC", await _hmacKey(secret), canonical);
  return {
    ...(to ? { [HEADER_TO]: to } : {}),
    [HEADER_NODE]: node,
    [HEADER_TIME]: time,
    [HEADER_NONCE]: nonce,
    [HEADER_SIGNATURE]: _hex(signature),
  };
}

async function _replyCanonical(
  nonce: string,
  status: number,
  body: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const bodyHash = _hex(await crypto.subtle.digest("SHA-256", encoder.encode(body)));
  // "REPLY" cannot start a request's canonical text (a method), so neither can stand for the
  // other.
  return encoder.encode(`REPLY\n${nonce}\n${status}\n${bodyHash}`);
}

/**
 * The signature of a reply to the signed request that carried `requestNonce`: hex
 * HMAC-SHA256(secret, `REPLY\n${nonce}\n${status}\n${hex sha256(body)}`). Binding the
 * request's nonce, the status code and the body means a reply cannot be forged, replayed for
 * another request, or have its status or body changed on the way.
 *
 * @example
 * ```ts
 * const secret = "s3cret"; // the cluster's shared secret (peer/secret.ts loads it)
 * declare const nonce: string; // the request's X-Baton-Nonce
 * const sig = await signReply(secret, nonce, 200, '{"ok":true}');
 * ```
 */
export async function signReply(
  secret: string,
  requestNonce: string,
  status: number,
  body: string,
): Promise<string> {
  const canonical = await _replyCanonical(requestNonce, status, body);
  return _hex(await crypto.subtle.sign("HMAC", await _hmacKey(secret), canonical));
}

/**
 * Whether `signature` (hex, from {@linkcode HEADER_REPLY_SIGNATURE}) signs this reply to the
 * request that carried `requestNonce`. A missing or malformed signature is false.
 *
 * @example
 * ```ts
 * const secret = "s3cret"; // the cluster's shared secret (peer/secret.ts loads it)
 * declare const nonce: string; // the nonce this node sent
 * declare const res: Response;
 * const text = await res.text();
 * if (!await verifyReply(secret, nonce, res.status, text, res.headers.get(HEADER_REPLY_SIGNATURE))) {
 *   throw new Error("unauthenticated reply");
 * }
 * ```
 */
export async function verifyReply(
  secret: string,
  requestNonce: string,
  status: number,
  body: string,
  signature: string | null,
): Promise<boolean> {
  if (signature === null || !SIGNATURE_RE.test(signature)) return false;
  const canonical = await _replyCanonical(requestNonce, status, body);
  return await crypto.subtle.verify(
    "HMAC",
    await _hmacKey(secret),
    _unhex(signature),
    canonical,
  );
}

/** The parts of a received request that {@linkcode RequestVerifier.verify} checks. */
export interface SignedRequest {
  method: string;
  pathWithQuery: string;
  headers: Headers;
  body: string;
}

/** Result of {@linkcode RequestVerifier.verify}: the authenticated node, or why not. */
export type VerifyResult = { ok: true; node: string; nonce: string } | {
  ok: false;
  reason: string;
};

/** Options of {@linkcode RequestVerifier}. */
export interface VerifierOptions {
  /** Accepted |receiver clock - X-Baton-Time|; default {@linkcode DEFAULT_MAX_SKEW_MS}. */
  maxSkewMs?: number;
  /** Wall clock in unix ms; default `Date.now`. */
  now?: () => number;
  /** Most nonces remembered at once (see {@linkcode ReplayCache}); default 100 000. */
  maxNonces?: number;
  /**
   * The `host:port`s this receiver answers as (its URL in the manifest). When set, a request
   * must be signed for one of them, so it cannot be replayed to another node.
   */
  hosts?: string[];
  /**
   * Wall time (unix ms) this receiver started: requests stamped before it are refused, so a
   * request captured before a restart cannot be replayed to the restarted process, whose
   * replay cache is empty. Default: the verifier's construction time.
   */
  notBefore?: number;
}

/**
 * Checks signed requests against the shared secret and remembers accepted nonces.
 * Use one verifier per server so replays are caught across all its routes.
 *
 * @example
 * ```ts
 * const secret = "s3cret"; // the cluster's shared secret (peer/secret.ts loads it)
 * declare const req: SignedRequest;
 * const verifier = new RequestVerifier(secret, { maxSkewMs: 30_000 });
 * const result = await verifier.verify(req);
 * if (!result.ok) console.log(`rejected: ${result.reason}`);
 * ```
 */
export class RequestVerifier {
  readonly #secret: string;
  readonly #maxSkewMs: number;
  readonly #now: () => number;
  readonly #replays: ReplayCache;
  readonly #hosts: string[] | null;
  readonly #notBefore: number;

  /** @param secret the cluster's shared secret. */
  constructor(secret: string, opts: VerifierOptions = {}) {
    const maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
    if (!Number.isFinite(maxSkewMs) || maxSkewMs < 0) {
      throw new RangeError(`RequestVerifier: expected maxSkewMs >= 0, got ${maxSkewMs}`);
    }
    this.#secret = secret;
    this.#maxSkewMs = maxSkewMs;
    this.#now = opts.now ?? Date.now;
    this.#replays = new ReplayCache(maxSkewMs, opts.maxNonces ?? 100_000);
    this.#hosts = opts.hosts ?? null;
    this.#notBefore = opts.notBefore ?? this.#now();
  }

  /** Sign a reply to a request this verifier accepted (see {@linkcode signReply}). */
  signReply(requestNonce: string, status: number, body: string): Promise<string> {
    return signReply(this.#secret, requestNonce, status, body);
  }

  /**
   * Verifies one request. The nonce is recorded only when everything else is valid, so
   * forged requests cannot fill the replay cache.
   */
  async verify(req: SignedRequest): Promise<VerifyResult> {
    const node = req.headers.get(HEADER_NODE);
    const time = req.headers.get(HEADER_TIME);
    const nonce = req.headers.get(HEADER_NONCE);
    const signature = req.headers.get(HEADER_SIGNATURE);
    if (node === null || time === null || nonce === null || signature === null) {
      const missing = [
        [HEADER_NODE, node],
        [HEADER_TIME, time],
        [HEADER_NONCE, nonce],
        [HEADER_SIGNATURE, signature],
      ].filter(([, v]) => v === null).map(([h]) => h);
      return { ok: false, reason: `missing header ${missing.join(", ")}` };
    }
    if (!NODE_RE.test(node)) return { ok: false, reason: `malformed ${HEADER_NODE}` };
    if (!TIME_RE.test(time)) return { ok: false, reason: `malformed ${HEADER_TIME}` };
    if (!NONCE_RE.test(nonce)) return { ok: false, reason: `malformed ${HEADER_NONCE}` };
    if (!SIGNATURE_RE.test(signature)) {
      return { ok: false, reason: `malformed ${HEADER_SIGNATURE}` };
    }

    const now = this.#now();
    const sentAt = Number(time);
    if (Math.abs(now - sentAt) > this.#maxSkewMs) return { ok: false, reason: "stale" };
    if (sentAt < this.#notBefore) {
      return { ok: false, reason: "stamped before this receiver started (a replay?)" };
    }

    const to = req.headers.get(HEADER_TO) ?? "";
    if (this.#hosts !== null && !this.#hosts.includes(to)) {
      return { ok: false, reason: to ? `signed for ${to}, not this node` : `missing ${HEADER_TO}` };
    }
    const canonical = await _canonical(
      req.method,
      to,
      req.pathWithQuery,
      node,
      time,
      nonce,
      req.body,
    );
    const valid = await crypto.subtle.verify(
      "HMAC",
      await _hmacKey(this.#secret),
      _unhex(signature),
      canonical,
    );
    if (!valid) return { ok: false, reason: "bad signature" };

    const outcome = this.#replays.record(nonce, sentAt, now);
    if (outcome === "replayed") return { ok: false, reason: "replayed" };
    if (outcome === "full") return { ok: false, reason: "replay cache full" };
    return { ok: true, node, nonce };
  }
}

/**
 * Variables {@linkcode hmacAuth} sets for later handlers:
 * `c.get("peer")` is the authenticated node name, `c.get("rawBody")` the request body text
 * the signature covered. `c.req.text()` / `c.req.json()` keep working too.
 */
export type AuthVariables = { peer: string; rawBody: string };

/** Time {@linkcode hmacAuth} allows for the whole body of a request before it is refused. */
export const BODY_TIMEOUT_MS = 2_000;

/** Reads at most `limit` bytes of a body within `timeoutMs`; null if it is longer. */
async function _readBody(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
  timeoutMs: number,
): Promise<string | null> {
  if (body === null) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`body not received within ${timeoutMs}ms`)),
      timeoutMs,
    );
  });
  late.catch(() => {});
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), late]);
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        return null;
      }
      chunks.push(value);
    }
  } catch (err) {
    await reader.cancel().catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  const all = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(all);
}

/**
 * Hono middleware that authenticates every request it guards. It reads the body once (at
 * most {@linkcode MAX_BODY_BYTES}, else 413), verifies it, and on failure answers
 * `401 { error: "unauthorized", reason }` without calling the handler. On success it sets
 * {@linkcode AuthVariables} (`peer`, `rawBody`). Every reply to an accepted request carries
 * {@linkcode HEADER_REPLY_SIGNATURE} (see {@linkcode signReply}).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * const secret = "s3cret"; // the cluster's shared secret (peer/secret.ts loads it)
 * const app = new Hono<{ Variables: AuthVariables }>();
 * app.use("/v1/*", hmacAuth(new RequestVerifier(secret)));
 * app.post("/v1/heartbeat", (c) => c.json({ from: c.get("peer"), body: c.get("rawBody") }));
 * ```
 */
export function hmacAuth(
  verifier: RequestVerifier,
): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const declared = Number(c.req.header("content-length") ?? "0");
    if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
      return c.json({ error: "payload too large", limit: MAX_BODY_BYTES }, 413);
    }
    let text: string | null;
    try {
      text = await _readBody(c.req.raw.body, MAX_BODY_BYTES, BODY_TIMEOUT_MS);
    } catch (err) {
      // The client went away mid-body (or sent broken chunking): its fault, not ours.
      return c.json({
        error: "bad request",
        reason: `cannot read the body: ${(err as Error).message}`,
      }, 400);
    }
    if (text === null) {
      return c.json({ error: "payload too large", limit: MAX_BODY_BYTES }, 413);
    }
    const url = new URL(c.req.url);
    const result = await verifier.verify({
      method: c.req.method,
      pathWithQuery: url.pathname + url.search,
      headers: c.req.raw.headers,
      body: text,
    });
    if (!result.ok) return c.json({ error: "unauthorized", reason: result.reason }, 401);
    // The stream is consumed: seed hono's body cache (it holds promises, whatever its type
    // says) so c.req.text() and c.req.json() still work in handlers.
    (c.req.bodyCache as unknown as { text?: Promise<string> }).text = Promise.resolve(text);
    c.set("peer", result.node);
    c.set("rawBody", text);
    await next();
    // Sign the reply (whatever its status) for this request's nonce: the client accepts no
    // reply it cannot verify, so a forged or altered answer is as good as none.
    const res = c.res;
    const replyText = await res.text();
    const headers = new Headers(res.headers);
    headers.set(
      HEADER_REPLY_SIGNATURE,
      await verifier.signReply(result.nonce, res.status, replyText),
    );
    c.res = undefined as unknown as Response; // replace, not merge, the finalized response
    c.res = new Response(replyText, { status: res.status, statusText: res.statusText, headers });
  };
}
