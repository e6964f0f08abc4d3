/**
 * A tiny HTTP app for demos and tests of baton: it can be told to crash, hang, or answer
 * errors, so every failure the monitor must notice can be produced on demand.
 *
 * ```sh
 * deno run --allow-net --allow-env examples/sample_app.ts --port 8080 --name web
 * ```
 *
 * Endpoints: `GET /` and `GET /health` ("ok <name> pid=… epoch=… node=…", or 503 in error
 * mode), `GET /info` (JSON), `POST /crash` (exit 1 shortly after answering), `POST /hang`
 * (stop answering anything), `POST /error` / `POST /recover` (toggle 503 on /health).
 * SIGTERM logs "stopping" and exits 0, unless `--ignore-sigterm`. `--crash-after <ms>`
 * exits 1 after that long.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Parsed command line of the sample app. */
export interface SampleOptions {
  port: number;
  hostname: string;
  name: string;
  ignoreSigterm: boolean;
  /** Exit 1 this long after start; null = never. */
  crashAfterMs: number | null;
}

/** What the app reports about itself. */
export interface SampleInfo {
  name: string;
  pid: number;
  /** `BATON_EPOCH` from the environment, null when unset. */
  epoch: string | null;
  /** `BATON_NODE` from the environment, null when unset. */
  node: string | null;
  startedAt: string;
}

/** Side effects the handler needs, injectable for in-process use. */
export interface SampleHooks {
  exit(code: number): void;
  log(line: string): void;
}

/**
 * Parses the sample app's arguments; the port falls back to `env.PORT`.
 * Throws with a message saying what was expected and found on bad input.
 *
 * @example
 * ```ts
 * parseSampleArgs(["--port", "8080", "--name", "web"], {});
 * // { port: 8080, hostname: "0.0.0.0", name: "web", ignoreSigterm: false, crashAfterMs: null }
 * ```
 */
export function parseSampleArgs(
  args: string[],
  env: Record<string, string | undefined>,
): SampleOptions {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: "string" },
      hostname: { type: "string" },
      name: { type: "string" },
      "ignore-sigterm": { type: "boolean" },
      "crash-after": { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  });
  const portText = values.port ?? env.PORT;
  if (portText === undefined) throw new Error("expected --port <n> or env PORT, found neither");
  const port = _integer(portText, "port");
  if (port > 65535) throw new Error(`expected a port in 0..65535, found ${port}`);
  const crashAfter = values["crash-after"];
  return {
    port,
    hostname: values.hostname ?? "0.0.0.0",
    name: values.name ?? "sample",
    ignoreSigterm: values["ignore-sigterm"] ?? false,
    crashAfterMs: crashAfter === undefined ? null : _integer(crashAfter, "--crash-after"),
  };
}

function _integer(text: string, what: string): number {
  if (!/^\d+$/.test(text)) {
    throw new Error(`expected ${what} to be a whole number, found "${text}"`);
  }
  return Number(text);
}

/**
 * Builds the request handler. Modes (error, hung) live in the closure.
 *
 * @example
 * ```ts
 * const handler = createSampleHandler(info, { exit: Deno.exit, log: console.log });
 * Deno.serve({ port: 8080 }, handler);
 * ```
 */
export function createSampleHandler(
  info: SampleInfo,
  hooks: SampleHooks,
): (req: Request) => Promise<Response> {
  let errorMode = false;
  let hung = false;
  const text = (status: number, body: string) =>
    new Response(`${body}\n`, { status, headers: { "content-type": "text/plain" } });

  const route = (req: Request, path: string): Response | null => {
    const isPost = req.method === "POST";
    if (req.method === "GET" && (path === "/" || path === "/health")) {
      if (errorMode) return text(503, "error mode");
      return text(
        200,
        `ok ${info.name} pid=${info.pid} epoch=${info.epoch ?? "-"} node=${info.node ?? "-"}`,
      );
    }
    if (req.method === "GET" && path === "/info") return Response.json(info);
    if ((isPost || req.method === "GET") && path === "/crash") {
      hooks.log(`${info.name} crashing on request`);
      setTimeout(() => hooks.exit(1), 50);
      return text(200, "crashing");
    }
    if (isPost && path === "/hang") {
      hung = true;
      return text(200, "hanging: no request will be answered from now on");
    }
    if (isPost && path === "/error") {
      errorMode = true;
      return text(200, "error mode on");
    }
    if (isPost && path === "/recover") {
      errorMode = false;
      return text(200, "recovered");
    }
    return null;
  };

  return (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    const stamp = new Date().toISOString();
    if (hung) {
      hooks.log(`${stamp} ${info.name} ${req.method} ${path} hung (never answered)`);
      return new Promise<Response>(() => {});
    }
    const res = route(req, path) ?? text(404, `not found: ${req.method} ${path}`);
    hooks.log(`${stamp} ${info.name} ${req.method} ${path} ${res.status}`);
    return Promise.resolve(res);
  };
}

function _main(): void {
  let options: SampleOptions;
  try {
    options = parseSampleArgs(Deno.args, { PORT: Deno.env.get("PORT") });
  } catch (e) {
    console.error(`sample_app: ${e instanceof Error ? e.message : String(e)}`);
    console.error(
      "usage: sample_app.ts --port <n> [--hostname <h>] [--name <name>] [--ignore-sigterm] " +
        "[--crash-after <ms>]",
    );
    Deno.exit(2);
  }
  const info: SampleInfo = {
    name: options.name,
    pid: Deno.pid,
    epoch: Deno.env.get("BATON_EPOCH") ?? null,
    node: Deno.env.get("BATON_NODE") ?? null,
    startedAt: new Date().toISOString(),
  };
  const hooks: SampleHooks = { exit: (code) => Deno.exit(code), log: (line) => console.log(line) };
  Deno.addSignalListener("SIGTERM", () => {
    if (options.ignoreSigterm) {
      console.log(`${info.name} ignoring SIGTERM`);
      return;
    }
    console.log(`${info.name} stopping`);
    Deno.exit(0);
  });
  if (options.crashAfterMs !== null) {
    const ms = options.crashAfterMs;
    setTimeout(() => {
      console.log(`${info.name} crashing after ${ms}ms`);
      Deno.exit(1);
    }, ms);
  }
  Deno.serve({
    port: options.port,
    hostname: options.hostname,
    onListen: ({ hostname, port }) =>
      console.log(`${info.name} listening on http://${hostname}:${port} pid=${info.pid}`),
  }, createSampleHandler(info, hooks));
}

if (import.meta.main) _main();
