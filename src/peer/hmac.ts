/**
 * The signature scheme of baton's requests and replies (see auth.ts for the protocol): the
 * `X-Baton-*` headers, the canonical texts, HMAC-SHA256 with the cluster's shared secret,
 * and the sender's and the reply checker's side.
 *
 * @module
 */

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

/** Valid `X-Baton-Node` values. */
export const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Valid `X-Baton-Time` values. */
export const TIME_RE = /^[0-9]{1,16}$/;
/** Valid `X-Baton-Nonce` values. */
export const NONCE_RE = /^[0-9a-f]{32}$/;
/** Valid signature headers. */
export const SIGNATURE_RE = /^[0-9a-f]{64}$/;

const encoder = new TextEncoder();
/** One imported key per secret: importKey runs once, later calls reuse the promise. */
const keyCache = new Map<string, Promise<CryptoKey>>();

/** The HMAC-SHA256 key of `secret` (imported once). */
export function _hmacKey(secret: string): Promise<CryptoKey> {
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

/** Lowercase hex to bytes. */
export function _unhex(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The canonical text a request signature covers. */
export async function _canonical(
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
