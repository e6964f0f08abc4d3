/**
 * The HTTP client one baton node uses to talk to its peers and to the witness: every request
 * is signed with the shared secret (see `auth.ts`), bodies are JSON, and the whole exchange,
 * reading the reply included, is bounded by a timeout.
 *
 * @example
 * ```ts
 * import type { NodeInfo } from "../core/types.ts";
 * const secret = "s3cret"; // the cluster's shared secret (peer/secret.ts loads it)
 * declare const myInfo: NodeInfo;
 * const client = new PeerClient({ node: "alpha", secret, timeoutMs: 2_000 });
 * try {
 *   const info = await client.post<NodeInfo>("http://beta:7946", "/v1/heartbeat", myInfo);
 *   console.log(info.role);
 * } catch (err) {
 *   if (err instanceof PeerError) console.log(`beta: ${err.message} (status ${err.status})`);
 * }
 * ```
 *
 * @module
 */
import { HEADER_NONCE, HEADER_REPLY_SIGNATURE, signRequest, verifyReply } from "./auth.ts";

/** Largest reply body the client reads, in bytes. */
export const MAX_REPLY_BYTES = 1024 * 1024;

/**
 * A failed exchange with a peer. `status` is the HTTP status of an authenticated reply, or 0
 * when no authenticated reply arrived (connection refused, name not resolved, timeout, TLS
 * failure, or a reply to a POST that is not signed for our request: see `signReply`).
 * `httpStatus` is the status of whatever HTTP reply arrived, signed or not (0: none).
 *
 * @example
 * ```ts
 * declare const err: unknown;
 * if (err instanceof PeerError && err.status === 401) console.log("secret mismatch?");
 * ```
 */
export class PeerError extends Error {
  /** HTTP status, or 0 for a network failure or a timeout. */
  readonly status: number;
  /** HTTP status of any reply that arrived, authenticated or not; 0 when none did. */
  readonly httpStatus: number;

  /** @param status HTTP status, or 0 when no (authenticated) reply arrived. */
  constructor(
    status: number,
    message: string,
    options?: ErrorOptions & { httpStatus?: number },
  ) {
    super(message, options);
    this.name = "PeerError";
    this.status = status;
    this.httpStatus = options?.httpStatus ?? status;
  }
}

/** Options of {@linkcode PeerClient}. */
export interface PeerClientOptions {
  /** This node's name, sent in `X-Baton-Node`. */
  node: string;
  /** The cluster's shared secret. */
  secret: string;
  /** Bound on one whole exchange: connect, send, and read the reply. */
  timeoutMs: number;
  /** Replaces the global fetch (tests). */
  fetch?: typeof fetch;
  /** PEM of the CA that signed the peers' certificates, for https URLs. */
  caCert?: string | null;
}

/** Pulls the innermost useful text out of a fetch failure. */
function _describeNetworkError(err: unknown, host: string): string {
  const texts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur instanceof Error && depth < 5; depth++) {
    texts.push(cur.message);
    cur = cur.cause;
  }
  const all = texts.join(" | ");
  // Deno: "error sending request for url (…): client error (Connect): <the actual cause>"
  const last = (texts[texts.length - 1] ?? String(err))
    .replace(/^error sending request for url \([^)]*\): /, "")
    .replace(/^client error \([^)]*\): /, "");
  let what: string;
  if (/connection refused/i.test(all)) what = "connection refused";
  else if (/dns error|failed to lookup|name or service not known/i.test(all)) {
    what = "name not resolved";
  } else if (/connection reset/i.test(all)) what = "connection reset";
  else if (/certificate|tls|ssl|handshake/i.test(all)) what = `TLS failure: ${last}`;
  else if (/no route to host|network is unreachable/i.test(all)) what = "no route to host";
  else what = last;
  return `${host} unreachable: ${what}`;
}

/** A promise that rejects with the signal's reason when it aborts (never resolves). */
function _abortedPromise(signal: AbortSignal): Promise<never> {
  const aborted = new Promise<never>((_, reject) => {
    const fail = () => reject(signal.reason);
    if (signal.aborted) fail();
    else signal.addEventListener("abort", fail, { once: true });
  });
  aborted.catch(() => {}); // only ever consumed through Promise.race
  return aborted;
}

/** Reads at most `limit` bytes of a reply body, rejecting when `signal` aborts. */
async function _readReply(res: Response, limit: number, signal: AbortSignal): Promise<string> {
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const aborted = _abortedPromise(signal);
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), aborted]);
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        throw new PeerError(res.status, `reply larger than ${limit} bytes`);
      }
      chunks.push(value);
    }
  } catch (err) {
    await reader.cancel().catch(() => {});
    throw err;
  }
  const all = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** Builds the error for a non-2xx reply: `HTTP 401: replayed`. */
function _httpError(status: number, text: string): PeerError {
  let detail = text.trim().slice(0, 200);
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body === "object" && body !== null) {
      const { reason, error, errors } = body as {
        reason?: unknown;
        error?: unknown;
        errors?: unknown;
      };
      if (typeof reason === "string") detail = reason;
      else if (typeof error === "string") detail = error;
      else if (Array.isArray(errors)) detail = ["refused:", ...errors.map(String)].join("\n");
    }
  } catch {
    // not JSON: keep the text
  }
  return new PeerError(status, detail === "" ? `HTTP ${status}` : `HTTP ${status}: ${detail}`);
}

/**
 * Signed JSON client for peer and witness URLs.
 *
 * Call {@linkcode PeerClient.close} when done if a `caCert` was given (it owns an HTTP client).
 *
 * @example
 * ```ts
 * const secret = "s3cret"; // the cluster's shared secret (peer/secret.ts loads it)
 * const client = new PeerClient({ node: "alpha", secret, timeoutMs: 1_000 });
 * const view = await client.get<{ witness: string }>("http://witness:7950", "/v1/witness");
 * ```
 */
export class PeerClient {
  readonly #node: string;
  readonly #secret: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  readonly #httpClient: Deno.HttpClient | null;

  /** @param opts see {@linkcode PeerClientOptions}. */
  constructor(opts: PeerClientOptions) {
    if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
      throw new RangeError(`PeerClient: expected timeoutMs > 0, got ${opts.timeoutMs}`);
    }
    this.#node = opts.node;
    this.#secret = opts.secret;
    this.#timeoutMs = opts.timeoutMs;
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#httpClient = opts.caCert ? Deno.createHttpClient({ caCerts: [opts.caCert] }) : null;
  }

  /**
   * Signed GET of `baseUrl` + `path`; resolves to the parsed JSON reply.
   * Throws {@linkcode PeerError} on a network failure, timeout, or non-2xx reply.
   */
  get<T>(baseUrl: string, path: string, timeoutMs?: number): Promise<T> {
    return this.#request<T>("GET", baseUrl, path, null, timeoutMs ?? this.#timeoutMs);
  }

  /**
   * Signed POST of `body` as JSON to `baseUrl` + `path`; resolves to the parsed JSON reply.
   * Throws {@linkcode PeerError} on a network failure, timeout, non-2xx reply, or a reply that
   * is not signed for this request (status 0: as good as no reply).
   */
  post<T>(baseUrl: string, path: string, body: unknown, timeoutMs?: number): Promise<T> {
    return this.#request<T>(
      "POST",
      baseUrl,
      path,
      JSON.stringify(body ?? null),
      timeoutMs ?? this.#timeoutMs,
    );
  }

  /** Releases the TLS client created for `caCert`, if any. */
  close(): void {
    this.#httpClient?.close();
  }

  async #request<T>(
    method: "GET" | "POST",
    baseUrl: string,
    path: string,
    body: string | null,
    timeoutMs: number,
  ): Promise<T> {
    let url: URL;
    try {
      url = new URL(baseUrl.replace(/\/+$/, "") + (path.startsWith("/") ? path : `/${path}`));
    } catch {
      throw new PeerError(0, `invalid URL: expected http(s)://host:port, got ${baseUrl}`);
    }
    const headers: Record<string, string> = await signRequest(
      this.#secret,
      this.#node,
      method,
      url.pathname + url.search,
      body ?? "",
      Date.now(),
      url.host,
    );
    headers["Accept"] = "application/json";
    if (body !== null) headers["Content-Type"] = "application/json";

    const controller = new AbortController();
    const timeout = new DOMException(
      `${url.host}: timed out after ${timeoutMs}ms`,
      "TimeoutError",
    );
    const timer = setTimeout(() => controller.abort(timeout), timeoutMs);
    try {
      let res: Response;
      try {
        const init: RequestInit & { client?: Deno.HttpClient } = {
          method,
          headers,
          signal: controller.signal,
          redirect: "manual",
        };
        if (body !== null) init.body = body;
        if (this.#httpClient !== null) init.client = this.#httpClient;
        // Raced against the signal too, in case an injected fetch ignores it.
        res = await Promise.race([this.#fetch(url, init), _abortedPromise(controller.signal)]);
      } catch (err) {
        if (controller.signal.aborted) throw new PeerError(0, timeout.message);
        throw new PeerError(0, _describeNetworkError(err, url.host), { cause: err });
      }
      let text: string;
      try {
        text = await _readReply(res, MAX_REPLY_BYTES, controller.signal);
      } catch (err) {
        if (err instanceof PeerError) throw err;
        if (controller.signal.aborted) throw new PeerError(0, timeout.message);
        throw new PeerError(0, `${url.host}: reading the reply failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
      // Every POST goes through the receiver's authentication, which signs its reply for our
      // nonce: an unsigned or mismatched reply is a forgery (or not a baton endpoint).
      if (
        method === "POST" &&
        !await verifyReply(
          this.#secret,
          headers[HEADER_NONCE] ?? "",
          res.status,
          text,
          res.headers.get(HEADER_REPLY_SIGNATURE),
        )
      ) {
        const http = _httpError(res.status, text);
        const why = res.headers.has(HEADER_REPLY_SIGNATURE)
          ? "reply signature does not match"
          : "reply not signed";
        throw new PeerError(0, `${url.host}: ${why} (${http.message})`, {
          httpStatus: res.status,
        });
      }
      if (res.status < 200 || res.status > 299) throw _httpError(res.status, text);
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new PeerError(
          res.status,
          `expected a JSON reply from ${url.host}${url.pathname}, got ${
            JSON.stringify(text.slice(0, 80))
          }`,
        );
      }
    } finally {
      clearTimeout(timer);
    }
  }
}
