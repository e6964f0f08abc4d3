/**
 * A guarded front for the node's (and the witness's) HTTP listener, against denial of service
 * before authentication. `Deno.serve` has no connection cap and no header-read deadline (a
 * client that sends half a request line keeps its socket, and a file descriptor, forever), so
 * the public port is a plain TCP (or TLS) listener of ours that:
 * - refuses (closes at once) connections beyond `maxConns` in total, `maxPerAddress` from
 *   one remote address, or `maxNewPerSecond` new ones per second: a flood from one host cannot take every file descriptor, and the
 *   addresses of the cluster's own nodes and witness (`trusted`) are never refused by the
 *   total cap, so peers always get in;
 * - closes a connection whose request head is not complete within `headerTimeoutMs`, or that
 *   is longer than {@linkcode MAX_HEAD_BYTES};
 * - closes a connection idle (nothing read from the client) for `idleTimeoutMs`;
 * - then pipes the bytes to the real `Deno.serve` on a unix socket, which authenticates each
 *   request (`auth.ts`, whose body cap and body deadline bound what it buffers).
 *
 * Memory is therefore bounded by the connection caps times one head buffer, whatever the
 * flood; see `scripts/dos_flood.ts` for the measurement.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * const app = new Hono();
 * const inner = Deno.serve({ path: "/run/baton/api.sock", onListen() {} }, app.fetch);
 * const guard = serveGuarded(Deno.listen({ port: 7401 }), "/run/baton/api.sock", {
 *   trusted: new Set(["10.0.0.2"]),
 * });
 * ```
 *
 * @module
 */

/** Longest request head (request line and headers) accepted. */
export const MAX_HEAD_BYTES = 16 * 1024;

/** Buffer of each direction of an admitted connection. */
const PIPE_CHUNK = 8 * 1024;

/** TCP_NODELAY on a TCP connection (a TLS one keeps the default: Deno exposes no switch). */
function _noDelay(conn: Deno.Conn): void {
  const tcp = conn as Partial<Deno.TcpConn>;
  try {
    tcp.setNoDelay?.(true);
  } catch { /* closed already, or not TCP */ }
}

/** Limits of {@linkcode serveGuarded}. */
export interface GuardOptions {
  /** Most open connections from untrusted addresses (default 128). */
  maxConns?: number;
  /** Most open connections from one untrusted address (default 8). */
  maxPerAddress?: number;
  /**
   * Most connections admitted per second from untrusted addresses (default 200): a client
   * that reconnects as fast as it is closed cannot make the agent churn through buffers.
   */
  maxNewPerSecond?: number;
  /** Time allowed for the request head of a new connection (default 2 s). */
  headerTimeoutMs?: number;
  /** A connection with nothing from the client for this long is closed (default 30 s). */
  idleTimeoutMs?: number;
  /** Remote addresses (IP literals) of the cluster's nodes and witness. */
  trusted?: Set<string>;
}

/** Counters of a guard, for status and tests. */
export interface GuardStats {
  open: number;
  refused: number;
  headTimeouts: number;
}

/** A running guard. */
export interface Guard {
  stats(): GuardStats;
  /** Stop accepting and close every connection. */
  close(): void;
}

const HEAD_END = [13, 10, 13, 10];

function _headEnd(buf: Uint8Array, len: number): boolean {
  for (let i = 3; i < len; i++) {
    if (
      buf[i - 3] === HEAD_END[0] && buf[i - 2] === HEAD_END[1] && buf[i - 1] === HEAD_END[2] &&
      buf[i] === HEAD_END[3]
    ) return true;
  }
  return false;
}

/** Strip an IPv4-mapped IPv6 prefix so `::ffff:10.0.0.1` and `10.0.0.1` are one address. */
function _addr(conn: Deno.Conn): string {
  const a = conn.remoteAddr as Deno.NetAddr;
  return (a.hostname ?? "").replace(/^::ffff:/, "");
}

/**
 * Accept on `listener`, enforce the limits, and pipe admitted connections to the HTTP server
 * listening on the unix socket `innerPath`.
 */
export function serveGuarded(
  listener: Deno.Listener,
  innerPath: string,
  opts: GuardOptions = {},
): Guard {
  const maxConns = opts.maxConns ?? 128;
  const maxPerAddress = opts.maxPerAddress ?? 8;
  const headerTimeoutMs = opts.headerTimeoutMs ?? 2_000;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
  const trusted = opts.trusted ?? new Set<string>();
  const maxNewPerSecond = opts.maxNewPerSecond ?? 200;
  let windowStart = 0;
  let admittedInWindow = 0;
  const perAddress = new Map<string, number>();
  const open = new Set<Deno.Conn>();
  const inners = new Set<Deno.Conn>();
  let untrusted = 0;
  const stats: GuardStats = { open: 0, refused: 0, headTimeouts: 0 };
  let closed = false;

  const closeQuietly = (c: Deno.Conn) => {
    try {
      c.close();
    } catch { /* already closed */ }
  };

  const handle = async (conn: Deno.Conn, addr: string, isTrusted: boolean) => {
    let inner: Deno.UnixConn | null = null;
    let idle: ReturnType<typeof setTimeout> | undefined;
    try {
      // 1. The request head, within the deadline.
      // Small first: most heads are a few hundred bytes, and a flood must not cost 16 KiB each.
      let head = new Uint8Array(1024);
      let len = 0;
      const deadline = setTimeout(() => {
        stats.headTimeouts++;
        closeQuietly(conn);
      }, headerTimeoutMs);
      try {
        while (!_headEnd(head, len)) {
          if (len >= head.length) {
            if (head.length >= MAX_HEAD_BYTES) return; // head too long
            const bigger = new Uint8Array(Math.min(head.length * 4, MAX_HEAD_BYTES));
            bigger.set(head.subarray(0, len));
            head = bigger;
          }
          const n = await conn.read(head.subarray(len));
          if (n === null) return;
          len += n;
        }
      } finally {
        clearTimeout(deadline);
      }
      // 2. Hand the connection to the real server. No Nagle on the public side: a reply
      // longer than one pipe chunk leaves in several writes, and Nagle would hold the second
      // until the client's delayed ACK (~40 ms a status at 100 apps; Deno.serve sets it too).
      _noDelay(conn);
      inner = await Deno.connect({ transport: "unix", path: innerPath });
      inners.add(inner);
      await inner.write(head.subarray(0, len));
      const innerConn = inner;
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          closeQuietly(conn);
          closeQuietly(innerConn);
        }, idleTimeoutMs);
      };
      arm();
      const up = (async () => {
        const buf = new Uint8Array(PIPE_CHUNK);
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) break;
          arm();
          let off = 0;
          while (off < n) off += await innerConn.write(buf.subarray(off, n));
        }
        await innerConn.closeWrite().catch(() => {});
      })().catch(() => closeQuietly(innerConn)); // our side is gone: so is the inner one
      const down = (async () => {
        const buf = new Uint8Array(PIPE_CHUNK);
        for (;;) {
          const n = await innerConn.read(buf);
          if (n === null) break;
          let off = 0;
          while (off < n) off += await conn.write(buf.subarray(off, n));
        }
      })();
      await Promise.race([up, down.catch(() => {})]);
      await down.catch(() => {});
    } catch {
      // a reset, a closed socket, an unreachable inner server: the connection just ends
    } finally {
      clearTimeout(idle);
      closeQuietly(conn);
      if (inner) {
        closeQuietly(inner);
        inners.delete(inner);
      }
      open.delete(conn);
      stats.open = open.size;
      if (!isTrusted) {
        untrusted--;
        const n = (perAddress.get(addr) ?? 1) - 1;
        if (n > 0) perAddress.set(addr, n);
        else perAddress.delete(addr);
      }
    }
  };

  (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (closed || err instanceof Deno.errors.BadResource) return;
        // EMFILE and friends: back off a little instead of spinning.
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const addr = _addr(conn);
      const isTrusted = trusted.has(addr);
      const t = performance.now();
      if (t - windowStart >= 1_000) {
        windowStart = t;
        admittedInWindow = 0;
      }
      if (
        !isTrusted &&
        (untrusted >= maxConns || (perAddress.get(addr) ?? 0) >= maxPerAddress ||
          admittedInWindow >= maxNewPerSecond)
      ) {
        stats.refused++;
        closeQuietly(conn);
        continue;
      }
      if (!isTrusted) {
        admittedInWindow++;
        untrusted++;
        perAddress.set(addr, (perAddress.get(addr) ?? 0) + 1);
      }
      open.add(conn);
      stats.open = open.size;
      handle(conn, addr, isTrusted);
    }
  })();

  return {
    stats: () => ({ ...stats }),
    close() {
      closed = true;
      try {
        listener.close();
      } catch { /* already closed */ }
      for (const c of open) closeQuietly(c);
      for (const c of inners) closeQuietly(c);
    },
  };
}

/** Where and how {@linkcode serveHttpGuarded} listens. */
export interface GuardedHttpOptions extends GuardOptions {
  hostname: string;
  port: number;
  /** PEM texts: serve https on the public port. */
  tls?: { cert: string; key: string } | null;
  /** Unix socket of the inner HTTP server (in a directory only the agent can enter). */
  socketPath: string;
}

/**
 * `Deno.serve(handler)` behind {@linkcode serveGuarded}: the public port enforces the
 * connection caps and deadlines, the handler runs on a unix socket behind it.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * const app = new Hono();
 * const socketPath = "/run/baton/api.sock";
 * const s = await serveHttpGuarded({ hostname: "0.0.0.0", port: 7401, socketPath }, app.fetch);
 * await s.shutdown();
 * ```
 */
export async function serveHttpGuarded(
  opts: GuardedHttpOptions,
  handler: (req: Request) => Response | Promise<Response>,
): Promise<{ guard: Guard; addr: Deno.NetAddr; shutdown: () => Promise<void> }> {
  await Deno.remove(opts.socketPath).catch(() => {});
  const inner = Deno.serve({ transport: "unix", path: opts.socketPath, onListen() {} }, handler);
  const listener = opts.tls
    ? Deno.listenTls({ hostname: opts.hostname, port: opts.port, ...opts.tls })
    : Deno.listen({ hostname: opts.hostname, port: opts.port });
  const guard = serveGuarded(listener, opts.socketPath, opts);
  return {
    guard,
    addr: listener.addr as Deno.NetAddr,
    shutdown: async () => {
      guard.close();
      await inner.shutdown();
      await Deno.remove(opts.socketPath).catch(() => {});
    },
  };
}

/**
 * The IP literals among the hosts of `urls` (node and witness URLs of the manifest): the
 * addresses {@linkcode serveGuarded} never refuses for the total cap. Host names are not
 * resolved (a name's address can change); give nodes IP URLs to reserve them room.
 */
export function trustedAddresses(urls: string[]): Set<string> {
  const out = new Set<string>();
  for (const u of urls) {
    try {
      const host = new URL(u).hostname.replace(/^\[|\]$/g, "");
      if (/^[0-9.]+$/.test(host) || host.includes(":")) out.add(host);
    } catch { /* not a URL: nothing to trust */ }
  }
  return out;
}
