import assert from "node:assert/strict";
import { Hono } from "hono";
import { type AuthVariables, hmacAuth, RequestVerifier } from "../src/peer/auth.ts";
import { PeerClient, PeerError } from "../src/peer/client.ts";

const SECRET = "peer-client-test-secret-0123";
/** Generous bound on tests that must end by timeout: failing it means "not bounded". */
const HANG_GUARD_MS = 15_000;

interface TestServer {
  url: string;
  close: () => Promise<void>;
}

/** A real HTTP server on an ephemeral port with authenticated and misbehaving routes. */
function startServer(tls?: { cert: string; key: string }): TestServer {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const streams: ReadableStreamDefaultController<Uint8Array>[] = [];

  const app = new Hono<{ Variables: AuthVariables }>();
  app.use("/v1/*", hmacAuth(new RequestVerifier(SECRET)));
  app.get("/v1/whoami", (c) => c.json({ peer: c.get("peer") }));
  app.post("/v1/echo", (c) => c.json({ peer: c.get("peer"), got: JSON.parse(c.get("rawBody")) }));
  app.get("/hang", async (c) => {
    await released;
    return c.json({ late: true });
  });
  app.get("/stall-body", () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        streams.push(controller);
        controller.enqueue(new TextEncoder().encode('{"partial":'));
      },
    });
    return new Response(body, { headers: { "content-type": "application/json" } });
  });
  app.get("/not-json", (c) => c.text("hello"));
  app.get("/boom", (c) => c.text("something broke", 500));

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {}, ...(tls ?? {}) },
    app.fetch,
  );
  const scheme = tls ? "https" : "http";
  return {
    url: `${scheme}://127.0.0.1:${server.addr.port}`,
    close: async () => {
      release();
      for (const s of streams) {
        try {
          s.close();
        } catch { /* already cancelled by the client */ }
      }
      await server.shutdown();
    },
  };
}

async function withServer(fn: (url: string) => Promise<void>, tls?: { cert: string; key: string }) {
  const server = startServer(tls);
  try {
    await fn(server.url);
  } finally {
    await server.close();
  }
}

/** Awaits `p` expecting a PeerError; fails if it does not settle within the hang guard. */
async function expectPeerError(p: Promise<unknown>): Promise<PeerError> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`request not bounded: still pending after ${HANG_GUARD_MS}ms`)),
      HANG_GUARD_MS,
    );
  });
  try {
    await Promise.race([p, guard]);
  } catch (err) {
    if (err instanceof PeerError) return err;
    throw err;
  } finally {
    clearTimeout(timer);
  }
  throw new Error("expected a PeerError, but the request succeeded");
}

function client(opts: { secret?: string; timeoutMs?: number; fetch?: typeof fetch } = {}) {
  return new PeerClient({
    node: "alpha",
    secret: opts.secret ?? SECRET,
    timeoutMs: opts.timeoutMs ?? 5_000,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
}

Deno.test("PeerClient.post sends signed JSON and returns the parsed reply", async () => {
  await withServer(async (url) => {
    const reply = await client().post<{ peer: string; got: unknown }>(url, "/v1/echo", {
      epoch: 3,
      role: "active",
    });
    assert.deepEqual(reply, { peer: "alpha", got: { epoch: 3, role: "active" } });
  });
});

Deno.test("PeerClient.get sends a signed GET, with or without a trailing slash on the base", async () => {
  await withServer(async (url) => {
    const c = client();
    assert.deepEqual(await c.get(url, "/v1/whoami"), { peer: "alpha" });
    assert.deepEqual(await c.get(`${url}/`, "v1/whoami"), { peer: "alpha" });
  });
});

Deno.test("PeerClient maps a 401 to PeerError with the status and the reason", async () => {
  await withServer(async (url) => {
    const err = await expectPeerError(
      client({ secret: "not-the-cluster-secret!" }).post(url, "/v1/echo", {}),
    );
    // The 401 of a failed authentication is not signed (the request was not ours to answer),
    // so it is no authenticated reply: status 0, the HTTP status kept apart.
    assert.equal(err.status, 0);
    assert.equal(err.httpStatus, 401);
    assert.match(err.message, /reply not signed \(HTTP 401: bad signature\)/);
    assert.ok(!err.message.includes(SECRET));
  });
});

Deno.test("PeerClient maps a non-JSON error reply to 'HTTP <status>: <text>'", async () => {
  await withServer(async (url) => {
    const err = await expectPeerError(client().get(url, "/boom"));
    assert.equal(err.status, 500);
    assert.equal(err.message, "HTTP 500: something broke");
  });
});

Deno.test("PeerClient rejects a 2xx reply that is not JSON", async () => {
  await withServer(async (url) => {
    const err = await expectPeerError(client().get(url, "/not-json"));
    assert.equal(err.status, 200);
    assert.match(err.message, /expected a JSON reply from 127\.0\.0\.1:\d+\/not-json, got "hello"/);
  });
});

Deno.test("PeerClient times out on a server that never answers (status 0)", async () => {
  await withServer(async (url) => {
    const err = await expectPeerError(client({ timeoutMs: 200 }).get(url, "/hang"));
    assert.equal(err.status, 0);
    assert.match(err.message, /timed out after 200ms$/);
  });
});

Deno.test("PeerClient timeout also bounds reading a reply body that stalls", async () => {
  await withServer(async (url) => {
    const err = await expectPeerError(client({ timeoutMs: 200 }).get(url, "/stall-body"));
    assert.equal(err.status, 0);
    assert.match(err.message, /timed out after 200ms$/);
  });
});

Deno.test("PeerClient timeout holds even if an injected fetch ignores the abort signal", async () => {
  const neverFetch = (() => new Promise<Response>(() => {})) as typeof fetch;
  const err = await expectPeerError(
    client({ timeoutMs: 100, fetch: neverFetch }).get("http://127.0.0.1:9", "/x"),
  );
  assert.equal(err.status, 0);
  assert.match(err.message, /timed out after 100ms$/);
});

Deno.test("PeerClient reports connection refused with status 0", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const err = await expectPeerError(client().post(`http://127.0.0.1:${port}`, "/v1/echo", {}));
  assert.equal(err.status, 0);
  assert.equal(err.message, `127.0.0.1:${port} unreachable: connection refused`);
});

Deno.test("PeerClient rejects an invalid base URL with status 0", async () => {
  const err = await expectPeerError(client().get("not a url", "/v1/x"));
  assert.equal(err.status, 0);
  assert.match(err.message, /invalid URL: expected http\(s\):\/\/host:port, got not a url/);
});

async function _run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A throwaway CA and a server certificate for 127.0.0.1, made with openssl. */
async function makeCerts(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await _run("openssl", [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=baton test CA",
  ], dir);
  await _run("openssl", [
    "req",
    ...ec,
    "-keyout",
    "srv.key",
    "-out",
    "srv.csr",
    "-subj",
    "/CN=127.0.0.1",
  ], dir);
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  await _run("openssl", [
    "x509",
    "-req",
    "-in",
    "srv.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "srv.pem",
    "-days",
    "1",
    "-extfile",
    "ext.cnf",
  ], dir);
  return {
    ca: await Deno.readTextFile(`${dir}/ca.pem`),
    cert: await Deno.readTextFile(`${dir}/srv.pem`),
    key: await Deno.readTextFile(`${dir}/srv.key`),
  };
}

const hasOpenssl = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "PeerClient with caCert trusts the cluster CA over https; without it TLS fails (status 0)",
  ignore: !hasOpenssl,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "baton_tls_test_" });
    try {
      const { ca, cert, key } = await makeCerts(dir);
      await withServer(async (url) => {
        const trusting = new PeerClient({
          node: "alpha",
          secret: SECRET,
          timeoutMs: 5_000,
          caCert: ca,
        });
        try {
          assert.deepEqual(await trusting.get(url, "/v1/whoami"), { peer: "alpha" });
        } finally {
          trusting.close();
        }
        const err = await expectPeerError(client().get(url, "/v1/whoami"));
        assert.equal(err.status, 0);
        assert.match(err.message, /^127\.0\.0\.1:\d+ unreachable: TLS failure: .*certificate/);
      }, { cert, key });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
