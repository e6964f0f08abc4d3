/**
 * The receiver's side of request authentication: {@linkcode RequestVerifier} checks the
 * headers, the clock skew, the signature and the nonce (replay) of a request.
 *
 * @module
 */
import { ReplayCache } from "./replay_cache.ts";
import {
  _canonical,
  _hmacKey,
  _unhex,
  DEFAULT_MAX_SKEW_MS,
  HEADER_NODE,
  HEADER_NONCE,
  HEADER_SIGNATURE,
  HEADER_TIME,
  HEADER_TO,
  NODE_RE,
  NONCE_RE,
  SIGNATURE_RE,
  signReply,
  TIME_RE,
} from "./hmac.ts";

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
