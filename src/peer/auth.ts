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
 * The signature scheme is in `hmac.ts`, the receiver's checks in `verifier.ts`; this module
 * holds the Hono middleware and re-exports both.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { HEADER_REPLY_SIGNATURE, MAX_BODY_BYTES } from "./hmac.ts";
import type { RequestVerifier } from "./verifier.ts";

export {
  DEFAULT_MAX_SKEW_MS,
  HEADER_NODE,
  HEADER_NONCE,
  HEADER_REPLY_SIGNATURE,
  HEADER_SIGNATURE,
  HEADER_TIME,
  HEADER_TO,
  MAX_BODY_BYTES,
  signReply,
  signRequest,
  verifyReply,
} from "./hmac.ts";
export { RequestVerifier } from "./verifier.ts";
export type { SignedRequest, VerifierOptions, VerifyResult } from "./verifier.ts";

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
