/**
 * The node's HTTP API, as a hono app: peers, operators and tools all talk to it.
 * Reads (`GET /v1/status`, `/v1/events`, `/healthz`) are open; everything that changes
 * state is authenticated with the cluster secret (see `auth.ts`). Only the runtime layer
 * calls `Deno.serve`; tests call `app.request()` in-process.
 *
 * @module
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { z } from "zod";
import type { ReloadResult, Reply } from "./api_types.ts";
import type { StatusDoc } from "./api_types.ts";
import type { Command, Event, NodeInfo } from "../core/types.ts";
import type { EventRecord } from "../store/event_log.ts";
import { type AuthVariables, hmacAuth, type RequestVerifier } from "./auth.ts";
import {
  describeZodError,
  EmptySchema,
  FenceOkSchema,
  MaintenanceSchema,
  NodeInfoSchema,
  SwitchoverSchema,
  TakeoverSchema,
} from "./messages.ts";

/** What the API needs from the agent (an `Agent` fits). */
export interface ApiAgent {
  status(): StatusDoc;
  info(): NodeInfo;
  dispatch(event: Event): void;
  request(make: (id: string) => Event): Promise<Reply>;
  command(command: Command): Promise<Reply>;
  reload(): Promise<ReloadResult>;
  events: { recent(n: number): EventRecord[] };
  state: { self: string; peers: Record<string, unknown> };
}

type Env = { Variables: AuthVariables };

/**
 * Build the API.
 *
 * @example
 * ```ts
 * import { RequestVerifier } from "./auth.ts";
 * const secret = "s3cret"; // the cluster's shared secret (peer/secret.ts loads it)
 * declare const agent: ApiAgent; // the Agent
 * const app = createPeerApi(agent, new RequestVerifier(secret));
 * const res = await app.request("/v1/status");
 * ```
 */
export function createPeerApi(agent: ApiAgent, verifier: RequestVerifier): Hono<Env> {
  const app = new Hono<Env>();

  app.onError((err, c) => {
    if (err instanceof HTTPException) return c.json({ error: err.message }, err.status);
    console.error(`api error on ${c.req.method} ${c.req.path}: ${err.message}`);
    return c.json({ error: "internal error" }, 500);
  });
  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));

  app.get("/healthz", (c) => c.json({ ok: true, node: agent.state.self }));
  app.get("/v1/status", (c) => c.json(agent.status()));
  app.get("/v1/events", (c) => {
    const n = Number(c.req.query("n") ?? "100");
    if (!Number.isInteger(n) || n < 1 || n > 1000) {
      throw new HTTPException(400, {
        message: `n must be an integer 1..1000, got ${c.req.query("n")}`,
      });
    }
    return c.json({ events: agent.events.recent(n) });
  });

  app.use("/v1/*", async (c, next) => {
    if (c.req.method === "GET") return await next();
    return await hmacAuth(verifier)(c, next);
  });

  /** Peer-only endpoints: the signer must be another node of the cluster. */
  const peerOnly = (peer: string) => {
    if (!(peer in agent.state.peers)) {
      throw new HTTPException(403, { message: `${peer} is not a peer of ${agent.state.self}` });
    }
  };

  app.post("/v1/heartbeat", (c) => {
    peerOnly(c.get("peer"));
    const info = parse(NodeInfoSchema, c.get("rawBody"));
    if (info.node !== c.get("peer")) {
      throw new HTTPException(400, {
        message: `signed by ${c.get("peer")} but names ${info.node}`,
      });
    }
    agent.dispatch({ type: "peer_info", info });
    return c.json(agent.info());
  });

  app.post("/v1/takeover/prepare", async (c) => {
    peerOnly(c.get("peer"));
    const body = parse(TakeoverSchema, c.get("rawBody"));
    const r = await agent.request((id) => ({
      type: "takeover_prepare",
      id,
      from: c.get("peer"),
      epoch: body.epoch,
      reason: body.reason,
    }));
    return c.json(r.body, r.status as 200);
  });

  app.post("/v1/takeover/commit", async (c) => {
    peerOnly(c.get("peer"));
    const body = parse(TakeoverSchema, c.get("rawBody"));
    const r = await agent.request((id) => ({
      type: "takeover_commit",
      id,
      from: c.get("peer"),
      epoch: body.epoch,
      reason: body.reason,
    }));
    return c.json(r.body, r.status as 200);
  });

  app.post("/v1/switchover", async (c) => {
    const body = parse(SwitchoverSchema, c.get("rawBody"));
    const r = await agent.command({ type: "switchover", to: body.to ?? null });
    return c.json(r.body, r.status as 200);
  });

  app.post("/v1/maintenance", async (c) => {
    const body = parse(MaintenanceSchema, c.get("rawBody"));
    const r = await agent.command({ type: "maintenance", on: body.on });
    return c.json(r.body, r.status as 200);
  });

  app.post("/v1/clear", async (c) => {
    parse(EmptySchema, c.get("rawBody"));
    const r = await agent.command({ type: "clear" });
    return c.json(r.body, r.status as 200);
  });

  app.post("/v1/fence-ok", async (c) => {
    const body = parse(FenceOkSchema, c.get("rawBody"));
    const r = await agent.command({ type: "fence_ok", node: body.node });
    return c.json(r.body, r.status as 200);
  });

  app.post("/v1/reload", async (c) => {
    parse(EmptySchema, c.get("rawBody"));
    const r = await agent.reload();
    return r.ok ? c.json(r) : c.json(r, 422);
  });

  return app;
}

/** Parse a JSON body against a schema, or throw a 400 that says what is wrong. */
function parse<T extends z.ZodType>(schema: T, raw: string): z.output<T> {
  let value: unknown;
  try {
    value = raw.trim() === "" ? {} : JSON.parse(raw);
  } catch (err) {
    throw new HTTPException(400, { message: `body is not JSON: ${(err as Error).message}` });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new HTTPException(400, { message: `bad body: ${describeZodError(parsed.error)}` });
  }
  return parsed.data;
}
