/**
 * The simulated peer transport: a `PeerTransport` per agent process that carries each request
 * over the simulated network into the receiving agent's own timers (a paused agent answers
 * late, a dead one refuses, a dead host never answers) and the reply back into the sender's.
 * The witness is the real `WitnessArbiter`; a plain HTTP witness answers 404.
 *
 * @module
 */
import type { PeerTransport } from "../agent/peer_link.ts";
import type { NodeInfo } from "../core/types.ts";
import { PeerError } from "../peer/client.ts";
import type { WitnessArbiter } from "../witness/arbiter.ts";
import { type Scenario, WITNESS } from "./scenario.ts";
import type { Incarnation, SimHost } from "./sim_host.ts";
import type { SimNetwork } from "./sim_network.ts";
import type { VirtualTime } from "./virtual_time.ts";

/** What the transport needs of the world. */
export interface NetWorld {
  readonly s: Scenario;
  readonly vt: VirtualTime;
  readonly hosts: Record<string, SimHost>;
  readonly net: SimNetwork;
  readonly arbiter: WitnessArbiter;
  world(who: string, text: string): void;
}

/** The transport of agent process `inc` on host `h`. */
export function simTransport(w: NetWorld, h: SimHost, inc: Incarnation): PeerTransport {
  return {
    post: <T>(baseUrl: string, path: string, body: unknown, timeoutMs = 10_000): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        const to = new URL(baseUrl).hostname;
        let done = false;
        const timer = inc.group.set(() => {
          if (done) return;
          done = true;
          reject(new PeerError(0, `${to}: timed out after ${timeoutMs}ms`));
        }, timeoutMs);
        const reply = (ok: boolean, value: unknown, heard: boolean) => {
          const d = w.net.transmitReply(to, h.name);
          if (d === null) return;
          const deliver = () => {
            if (done) return;
            if (ok && h.pauseEdge === "before_renewal" && pausesBefore(h, inc)) {
              // SIGSTOP with the answer that renews the lease still unread.
              h.pauseEdge = null;
              w.world(h.name, "fault: agent paused (SIGSTOP) just before a lease renewal");
              inc.group.freeze();
              inc.group.set(deliver, 0);
              return;
            }
            done = true;
            inc.group.clear(timer);
            if (heard && h.live === inc) h.lastReceived[to] = w.vt.now;
            if (ok) resolve(value as T);
            else reject(value);
          };
          inc.group.set(deliver, d);
        };
        const d = w.net.transmit(h.name, to);
        if (d === null) return;
        const json = JSON.stringify(body);
        w.vt.set(() => arrive(w, h.name, to, path, JSON.parse(json), reply), d);
      }),
  };
}

/** An answer to the live active renews its lease. */
function pausesBefore(h: SimHost, inc: Incarnation): boolean {
  return h.live === inc && inc.booted && inc.agent.state.role === "active";
}

function arrive(
  w: NetWorld,
  from: string,
  to: string,
  path: string,
  body: Record<string, unknown>,
  reply: (ok: boolean, value: unknown, heard: boolean) => void,
): void {
  if (to === WITNESS) return witness(w, from, path, body, reply);
  const t = w.hosts[to];
  if (!t || !t.up) return;
  const inc = t.live;
  if (!inc || !inc.booted) {
    reply(false, new PeerError(0, `${to}: connection refused`), false);
    return;
  }
  inc.group.set(() => {
    t.lastReceived[from] = w.vt.now;
    const agent = inc.agent;
    if (path === "/v1/heartbeat") {
      agent.dispatch({ type: "peer_info", info: body as unknown as NodeInfo });
      reply(true, agent.info(), true);
      return;
    }
    const phase = path === "/v1/takeover/prepare" ? "prepare" : "commit";
    const { epoch, reason } = body as { epoch: number; reason: string };
    agent.request((id) => ({ type: `takeover_${phase}`, id, from, epoch, reason }))
      .then((r) => {
        if (r.status < 300) reply(true, r.body, true);
        else {reply(
            false,
            new PeerError(r.status, `HTTP ${r.status}: ${String(r.body.error)}`),
            true,
          );}
      });
  }, 0);
}

function witness(
  w: NetWorld,
  from: string,
  path: string,
  body: Record<string, unknown>,
  reply: (ok: boolean, value: unknown, heard: boolean) => void,
): void {
  if (w.s.witness !== "baton") {
    reply(false, new PeerError(404, "not found"), false);
    return;
  }
  const now = w.vt.now;
  const { node, role, epoch } = body as { node: string; role: "active"; epoch: number };
  if (node !== from) return reply(false, new PeerError(400, "signer mismatch"), false);
  if (path.endsWith("/beat")) {
    w.arbiter.beat(node, role, epoch, now);
    reply(
      true,
      { ok: true, witness: "baton", nodes: {}, active: w.arbiter.active(now) },
      false,
    );
    return;
  }
  const decision = w.arbiter.claim(node, epoch, now);
  w.world(
    WITNESS,
    `claim of ${node} for epoch ${epoch}: ${
      decision.granted ? "granted" : "refused"
    } (${decision.reason})`,
  );
  reply(
    true,
    { witness: "baton", nodes: {}, active: w.arbiter.active(now), ...decision },
    false,
  );
}
