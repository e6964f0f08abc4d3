/**
 * The HTTP side of the peer protocol as seen from the sender: heartbeats, the witness, and
 * the two phases of a handover. Every exchange ends in exactly one event for the core.
 *
 * @module
 */
import type { Event, NodeInfo } from "../core/types.ts";
import type { Manifest } from "../manifest/types.ts";
import { describeZodError, NodeInfoSchema, WitnessReplySchema } from "../peer/messages.ts";
import { PeerError } from "../peer/client.ts";
import { readyWaitBoundMs } from "../core/ready_wait.ts";

/** The subset of {@linkcode PeerClient} the link needs (an in-memory twin fits too). */
export interface PeerTransport {
  post<T>(baseUrl: string, path: string, body: unknown, timeoutMs?: number): Promise<T>;
}

/** Sends the peer protocol's requests and turns each outcome into one core event. */
export class PeerLink {
  #inFlight = new Map<string, number>();
  #transport: PeerTransport;
  #manifest: () => Manifest;
  #self: string;
  #dispatch: (e: Event) => void;
  /** The core's clock: send times of acknowledged exchanges date the last contact. */
  #now: () => number;

  /** `manifest` is read at each send, so a reload's new peers are used at once. */
  constructor(
    self: string,
    manifest: () => Manifest,
    transport: PeerTransport,
    dispatch: (e: Event) => void,
    now: () => number,
  ) {
    this.#now = now;
    this.#self = self;
    this.#manifest = manifest;
    this.#transport = transport;
    this.#dispatch = dispatch;
  }

  /** One heartbeat to every peer (skipped for a peer with too many exchanges still open). */
  heartbeat(info: NodeInfo): void {
    const m = this.#manifest();
    for (const node of Object.values(m.nodes)) {
      if (node.name === this.#self) continue;
      const key = `hb:${node.name}`;
      if (!this.#begin(key)) continue;
      const sentAt = this.#now();
      this.#transport.post<unknown>(node.url, "/v1/heartbeat", info, beatTimeout(m))
        .then((reply) => {
          const parsed = NodeInfoSchema.safeParse(reply);
          if (!parsed.success) {
            throw new PeerError(0, `bad heartbeat reply: ${describeZodError(parsed.error)}`);
          }
          if (parsed.data.node !== node.name) {
            throw new PeerError(0, `${node.url} answered as ${parsed.data.node}, not ${node.name}`);
          }
          this.#dispatch({ type: "peer_info", info: parsed.data, sentAt });
        })
        .catch((err) =>
          this.#dispatch({ type: "peer_unreachable", node: node.name, error: msg(err) })
        )
        .finally(() => this.#end(key));
    }
  }

  /**
   * Beat the witness. A baton witness (`witness: URL`) counts only when it answers with a
   * valid, signed witness reply: any other answer (a proxy's 503, a forged or unsigned reply,
   * a body of the wrong shape) is as good as none. A plain HTTP witness
   * (`kind: http`, opted into explicitly) only proves reachability: any HTTP answer does.
   */
  witness(info: NodeInfo): void {
    const w = this.#manifest().cluster.witness;
    if (!w || !this.#begin("witness")) return;
    const sentAt = this.#now();
    const unreachable = (error: string) =>
      this.#dispatch({ type: "witness", ok: false, kind: null, active: null, error });
    this.#transport.post<unknown>(
      w.url,
      "/v1/witness/beat",
      beatOf(info),
      beatTimeout(this.#manifest()),
    )
      .then((reply) => {
        if (w.kind === "http") {
          this.#dispatch({
            type: "witness",
            ok: true,
            kind: "http",
            active: null,
            error: null,
            sentAt,
          });
          return;
        }
        const parsed = WitnessReplySchema.safeParse(reply);
        if (!parsed.success) {
          unreachable(`not a baton witness reply: ${describeZodError(parsed.error)}`);
          return;
        }
        this.#dispatch({
          type: "witness",
          ok: true,
          kind: "baton",
          active: parsed.data.active,
          error: null,
          sentAt,
          ...(parsed.data.maxEpoch !== undefined ? { maxEpoch: parsed.data.maxEpoch } : {}),
        });
      })
      .catch((err) => {
        // Any HTTP answer (a router's 404) proves a plain witness reachable; for a baton
        // witness only a signed witness reply counts.
        if (w.kind === "http" && err instanceof PeerError && err.httpStatus > 0) {
          this.#dispatch({
            type: "witness",
            ok: true,
            kind: "http",
            active: null,
            error: null,
            sentAt,
          });
        } else {
          unreachable(msg(err));
        }
      })
      .finally(() => this.#end("witness"));
  }

  /** Ask the baton witness to grant us the active role at `info.epoch`. */
  claim(info: NodeInfo): void {
    const w = this.#manifest().cluster.witness;
    if (!w) return;
    const timeout = this.#manifest().cluster.heartbeat.deadAfterMs;
    this.#transport.post<unknown>(w.url, "/v1/witness/claim", beatOf(info), timeout)
      .then((reply) => {
        const parsed = WitnessReplySchema.safeParse(reply);
        const ok = parsed.success && parsed.data.granted === true;
        const detail = parsed.success
          ? (parsed.data.reason ?? (ok ? "granted" : "refused"))
          : "bad witness reply";
        this.#dispatch({ type: "claim_result", epoch: info.epoch, ok, detail });
      })
      .catch((err) =>
        this.#dispatch({ type: "claim_result", epoch: info.epoch, ok: false, detail: msg(err) })
      );
  }

  /** Count one more exchange for `key`, unless {@linkcode maxBeatsInFlight} are open. */
  #begin(key: string): boolean {
    const n = this.#inFlight.get(key) ?? 0;
    if (n >= maxBeatsInFlight(this.#manifest())) return false;
    this.#inFlight.set(key, n + 1);
    return true;
  }

  #end(key: string): void {
    const n = (this.#inFlight.get(key) ?? 1) - 1;
    if (n > 0) this.#inFlight.set(key, n);
    else this.#inFlight.delete(key);
  }

  /** Phase one of a handover: will `to` take our apps? */
  prepare(to: string, epoch: number, reason: string): void {
    this.#handover("prepare", to, epoch, reason);
  }

  /** Phase two: our movable apps are stopped; `to` may start them. */
  commit(to: string, epoch: number, reason: string): void {
    this.#handover("commit", to, epoch, reason);
  }

  #handover(phase: "prepare" | "commit", to: string, epoch: number, reason: string): void {
    const m = this.#manifest();
    const node = m.nodes[to];
    const type = phase === "prepare" ? "prepare_result" : "commit_result";
    if (!node) {
      this.#dispatch({ type, to, ok: false, detail: `unknown node ${to}` });
      return;
    }
    // The target answers a commit once its movable apps are ready (core/ready_wait.ts).
    const timeout = Math.max(2_000, m.cluster.heartbeat.deadAfterMs * 2) +
      (phase === "commit" ? readyWaitBoundMs(m) : 0);
    this.#transport.post<
      {
        ok?: boolean;
        error?: string;
        epoch?: number;
        claiming?: boolean;
        notReady?: unknown;
        ready?: unknown;
      }
    >(
      node.url,
      `/v1/takeover/${phase}`,
      { epoch, reason },
      timeout,
    )
      .then((reply) =>
        this.#dispatch({
          type,
          to,
          ...(phase === "commit" && reply.ok === true && !reply.claiming &&
              typeof reply.epoch === "number"
            ? { epoch: reply.epoch }
            : {}),
          ...(phase === "commit" && reply.ok === true && typeof reply.notReady === "string"
            ? { notReady: reply.notReady.slice(0, 500) }
            : {}),
          ok: reply.ok === true,
          detail: reply.ok === true
            ? (reply.epoch !== undefined ? `active at epoch ${reply.epoch}` : "acknowledged") +
              (typeof reply.notReady === "string"
                ? `; ${reply.notReady.slice(0, 500)}`
                : reply.ready === true
                ? "; every movable app ready"
                : "")
            : (reply.error ?? "refused"),
        })
      )
      .catch((err) => this.#dispatch({ type, to, ok: false, detail: msg(err) }));
  }
}

/**
 * Bound of one heartbeat or witness exchange: `deadAfter`. A reply that is merely slow (a
 * loaded host) still proves the other side alive, and it cannot make self-fencing late: that
 * counts from when the answered request was *sent*.
 */
export function beatTimeout(m: Manifest): number {
  return m.cluster.heartbeat.deadAfterMs;
}

/**
 * Exchanges allowed in flight per peer (and to the witness): one per interval over a whole
 * timeout, plus one. A new beat still goes out every interval while older ones hang (a TCP
 * retransmission after a short blip), so a lost request costs one interval, never a timeout.
 */
export function maxBeatsInFlight(m: Manifest): number {
  const hb = m.cluster.heartbeat;
  return Math.ceil(beatTimeout(m) / hb.intervalMs) + 1;
}

/**
 * What the witness records of a node; `deadAfterMs` (the longest in force at the node) makes
 * the witness hold that node's lease at least as long.
 */
function beatOf(
  info: NodeInfo,
): { node: string; role: string; epoch: number; deadAfterMs?: number } {
  return {
    node: info.node,
    role: info.role,
    epoch: info.epoch,
    ...(info.settings ? { deadAfterMs: info.settings.deadAfterMs } : {}),
  };
}

function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
