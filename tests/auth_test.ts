import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  type AuthVariables,
  HEADER_NODE,
  HEADER_NONCE,
  HEADER_SIGNATURE,
  HEADER_TIME,
  hmacAuth,
  MAX_BODY_BYTES,
  RequestVerifier,
  signRequest,
} from "../src/peer/auth.ts";
import { ReplayCache } from "../src/peer/replay_cache.ts";
import { checkSecretFile, generateSecret, loadSecret } from "../src/peer/secret.ts";

const SECRET = "correct horse battery staple 42";
const T0 = 1_700_000_000_000;

async function signed(
  opts: { method?: string; path?: string; node?: string; body?: string; at?: number } = {},
) {
  const method = opts.method ?? "POST";
  const path = opts.path ?? "/v1/heartbeat";
  const body = opts.body ?? '{"node":"alpha"}';
  const headers = await signRequest(
    SECRET,
    opts.node ?? "alpha",
    method,
    path,
    body,
    opts.at ?? T0,
  );
  return { method, pathWithQuery: path, headers: new Headers(headers), body };
}

/** A verifier whose clock stands at `now`, started an hour before it. */
function verifierAt(now: number, maxSkewMs = 30_000, maxNonces?: number) {
  return new RequestVerifier(SECRET, {
    now: () => now,
    notBefore: now - 3_600_000,
    maxSkewMs,
    ...(maxNonces === undefined ? {} : { maxNonces }),
  });
}

Deno.test("signRequest produces the four headers in the documented formats", async () => {
  const h = await signRequest(SECRET, "alpha", "POST", "/v1/x", "", T0);
  assert.equal(h[HEADER_NODE], "alpha");
  assert.equal(h[HEADER_TIME], String(T0));
  assert.match(h[HEADER_NONCE] ?? "", /^[0-9a-f]{32}$/);
  assert.match(h[HEADER_SIGNATURE] ?? "", /^[0-9a-f]{64}$/);
  const again = await signRequest(SECRET, "alpha", "POST", "/v1/x", "", T0);
  assert.notEqual(again[HEADER_NONCE], h[HEADER_NONCE], "nonces must differ per request");
});

Deno.test("signRequest signature matches the documented canonical string", async () => {
  const body = '{"a":1}';
  const h = await signRequest(SECRET, "alpha", "post", "/v1/x?y=1", body, T0, "10.0.0.2:7401");
  const enc = new TextEncoder();
  const hex = (b: ArrayBuffer) =>
    Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
  const bodyHash = hex(await crypto.subtle.digest("SHA-256", enc.encode(body)));
  const canonical = `POST\n10.0.0.2:7401\n/v1/x?y=1\nalpha\n${T0}\n${h[HEADER_NONCE]}\n${bodyHash}`;
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const expected = hex(await crypto.subtle.sign("HMAC", key, enc.encode(canonical)));
  assert.equal(h[HEADER_SIGNATURE], expected);
});

Deno.test("RequestVerifier.verify accepts a signed request and names the node", async () => {
  const result = await verifierAt(T0).verify(await signed());
  assert.equal(result.ok, true);
  assert.equal(result.ok && result.node, "alpha");
});

Deno.test("RequestVerifier.verify rejects tampered body, path, method and node as bad signature", async () => {
  const verifier = verifierAt(T0);
  const tamperings: Array<[string, (r: Awaited<ReturnType<typeof signed>>) => void]> = [
    ["body", (r) => (r.body = '{"node":"mallory"}')],
    ["path", (r) => (r.pathWithQuery = "/v1/takeover")],
    ["query", (r) => (r.pathWithQuery = "/v1/heartbeat?force=1")],
    ["method", (r) => (r.method = "PUT")],
    ["node", (r) => r.headers.set(HEADER_NODE, "beta")],
    ["time", (r) => r.headers.set(HEADER_TIME, String(T0 + 1))],
  ];
  for (const [what, tamper] of tamperings) {
    const req = await signed();
    tamper(req);
    const result = await verifier.verify(req);
    assert.deepEqual(result, { ok: false, reason: "bad signature" }, `tampered ${what}`);
  }
});

Deno.test("RequestVerifier.verify rejects a request signed with another secret", async () => {
  const headers = await signRequest("another secret, 16+ chars", "alpha", "GET", "/v1/s", "", T0);
  const result = await verifierAt(T0).verify({
    method: "GET",
    pathWithQuery: "/v1/s",
    headers: new Headers(headers),
    body: "",
  });
  assert.deepEqual(result, { ok: false, reason: "bad signature" });
});

Deno.test("RequestVerifier.verify rejects missing headers and names them", async () => {
  const verifier = verifierAt(T0);
  for (const header of [HEADER_NODE, HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE]) {
    const req = await signed();
    req.headers.delete(header);
    const result = await verifier.verify(req);
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.reason, `missing header ${header}`);
  }
  const none = await verifier.verify({
    method: "GET",
    pathWithQuery: "/",
    headers: new Headers(),
    body: "",
  });
  assert.equal(none.ok, false);
  assert.match(!none.ok ? none.reason : "", /^missing header X-Baton-Node, X-Baton-Time/);
});

Deno.test("RequestVerifier.verify rejects malformed header values", async () => {
  const verifier = verifierAt(T0);
  const cases: Array<[string, string]> = [
    [HEADER_NODE, "al pha\n"],
    [HEADER_TIME, "-5"],
    [HEADER_TIME, "1.5e12"],
    [HEADER_NONCE, "zz"],
    [HEADER_SIGNATURE, "ABCDEF"],
  ];
  for (const [header, value] of cases) {
    const req = await signed();
    req.headers.set(header, value);
    const result = await verifier.verify(req);
    assert.deepEqual(result, { ok: false, reason: `malformed ${header}` }, `${header}=${value}`);
  }
});

Deno.test("RequestVerifier.verify rejects times beyond the skew, past and future, as stale", async () => {
  const verifier = verifierAt(T0, 30_000);
  assert.deepEqual(await verifier.verify(await signed({ at: T0 - 30_001 })), {
    ok: false,
    reason: "stale",
  });
  assert.deepEqual(await verifier.verify(await signed({ at: T0 + 30_001 })), {
    ok: false,
    reason: "stale",
  });
  assert.equal((await verifier.verify(await signed({ at: T0 - 30_000 }))).ok, true);
  assert.equal((await verifier.verify(await signed({ at: T0 + 30_000 }))).ok, true);
});

Deno.test("RequestVerifier.verify rejects a replay of the identical request", async () => {
  const verifier = verifierAt(T0);
  const req = await signed();
  assert.equal((await verifier.verify(req)).ok, true);
  assert.deepEqual(await verifier.verify(req), { ok: false, reason: "replayed" });
  // A fresh request from the same node still passes.
  assert.equal((await verifier.verify(await signed())).ok, true);
});

Deno.test("RequestVerifier.verify does not record nonces of forged requests", async () => {
  const verifier = verifierAt(T0);
  const req = await signed();
  const forged = { ...req, body: "forged" };
  assert.deepEqual(await verifier.verify(forged), { ok: false, reason: "bad signature" });
  assert.equal((await verifier.verify(req)).ok, true, "the genuine request must still pass");
});

Deno.test("RequestVerifier.verify fails closed with 'replay cache full'", async () => {
  const verifier = verifierAt(T0, 30_000, 2);
  assert.equal((await verifier.verify(await signed())).ok, true);
  assert.equal((await verifier.verify(await signed())).ok, true);
  assert.deepEqual(await verifier.verify(await signed()), {
    ok: false,
    reason: "replay cache full",
  });
});

Deno.test("RequestVerifier.verify reasons never contain the secret or a signature", async () => {
  const verifier = verifierAt(T0);
  const req = await signed();
  const reasons: string[] = [];
  for (const r of [{ ...req, body: "x" }, req, req, await signed({ at: 0 })]) {
    const result = await verifier.verify(r);
    if (!result.ok) reasons.push(result.reason);
  }
  assert.equal(reasons.length, 3);
  for (const reason of reasons) {
    assert.ok(!reason.includes(SECRET));
    assert.doesNotMatch(reason, /[0-9a-f]{32}/);
  }
});

Deno.test("ReplayCache.seen reports a replay and records new nonces", () => {
  const cache = new ReplayCache(1_000);
  assert.equal(cache.seen("n1", 100, 100), false);
  assert.equal(cache.seen("n1", 100, 500), true);
  assert.equal(cache.seen("n2", 100, 500), false);
  assert.equal(cache.size, 2);
});

Deno.test("ReplayCache evicts nonces once their window has passed", () => {
  const cache = new ReplayCache(1_000);
  cache.seen("a", 0, 0);
  cache.seen("b", 500, 500);
  assert.equal(cache.size, 2);
  assert.equal(cache.seen("c", 1_001, 1_001), false);
  assert.equal(cache.size, 2, "a expired at 1000 and is evicted");
  // An expired nonce is forgotten: its timestamp alone makes the verifier reject it as stale.
  assert.equal(cache.seen("a", 0, 1_001), false);
});

Deno.test("ReplayCache evicts expired nonces held back by a future-stamped one when full", () => {
  const cache = new ReplayCache(1_000, 3);
  cache.seen("future", 2_000, 1_000); // expires at 3000, first in insertion order
  cache.seen("old1", 0, 1_000); // expires at 1000
  cache.seen("old2", 0, 1_000);
  assert.equal(cache.size, 3);
  assert.equal(cache.record("new", 1_500, 1_500), "recorded");
  assert.equal(cache.size, 2, "the two expired nonces behind 'future' were swept");
  assert.equal(cache.seen("future", 2_000, 1_500), true);
});

Deno.test("ReplayCache refuses new nonces when full of live ones instead of forgetting", () => {
  const cache = new ReplayCache(1_000, 2);
  assert.equal(cache.record("a", 0, 0), "recorded");
  assert.equal(cache.record("b", 0, 0), "recorded");
  assert.equal(cache.record("c", 0, 10), "full");
  assert.equal(cache.seen("c", 0, 10), true, "seen() fails closed too");
  assert.equal(cache.record("a", 0, 10), "replayed", "a is still remembered");
  assert.equal(cache.record("c", 1_001, 1_001), "recorded", "room again once a and b expired");
});

function authApp() {
  let calls = 0;
  const app = new Hono<{ Variables: AuthVariables }>();
  app.use("/v1/*", hmacAuth(new RequestVerifier(SECRET)));
  app.post("/v1/echo", async (c) => {
    calls++;
    return c.json({ peer: c.get("peer"), raw: c.get("rawBody"), json: await c.req.json() });
  });
  return { app, calls: () => calls };
}

Deno.test("hmacAuth lets a signed request through with peer and rawBody set", async () => {
  const { app, calls } = authApp();
  const body = JSON.stringify({ hello: "world" });
  const headers = await signRequest(SECRET, "beta", "POST", "/v1/echo", body);
  const res = await app.request("/v1/echo", { method: "POST", headers, body });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { peer: "beta", raw: body, json: { hello: "world" } });
  assert.equal(calls(), 1);
});

Deno.test("hmacAuth answers 401 JSON and does not call the handler", async () => {
  const { app, calls } = authApp();
  const unsigned = await app.request("/v1/echo", { method: "POST", body: "{}" });
  assert.equal(unsigned.status, 401);
  const unsignedBody = await unsigned.json();
  assert.equal(unsignedBody.error, "unauthorized");
  assert.match(unsignedBody.reason, /^missing header/);

  const headers = await signRequest(SECRET, "beta", "POST", "/v1/echo", "{}");
  const tampered = await app.request("/v1/echo", { method: "POST", headers, body: '{"x":1}' });
  assert.equal(tampered.status, 401);
  assert.deepEqual(await tampered.json(), { error: "unauthorized", reason: "bad signature" });

  const ok = await app.request("/v1/echo", { method: "POST", headers, body: "{}" });
  assert.equal(ok.status, 200);
  const replay = await app.request("/v1/echo", { method: "POST", headers, body: "{}" });
  assert.equal(replay.status, 401);
  assert.deepEqual(await replay.json(), { error: "unauthorized", reason: "replayed" });
  assert.equal(calls(), 1, "only the genuine request reached the handler");
});

Deno.test("hmacAuth signs the query string too", async () => {
  const { app } = authApp();
  const headers = await signRequest(SECRET, "beta", "POST", "/v1/echo?a=1", "{}");
  const moved = await app.request("/v1/echo?a=2", { method: "POST", headers, body: "{}" });
  assert.equal(moved.status, 401);
  const right = await app.request("/v1/echo?a=1", { method: "POST", headers, body: "{}" });
  assert.equal(right.status, 200);
});

Deno.test("hmacAuth rejects bodies over the cap with 413 before verifying", async () => {
  const { app, calls } = authApp();
  const body = "x".repeat(MAX_BODY_BYTES + 1);
  const headers = await signRequest(SECRET, "beta", "POST", "/v1/echo", body);
  const res = await app.request("/v1/echo", { method: "POST", headers, body });
  assert.equal(res.status, 413);
  // Without a Content-Length the streamed body is still capped.
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(body));
      controller.close();
    },
  });
  const streamed = await app.request(
    new Request("http://localhost/v1/echo", { method: "POST", headers, body: stream }),
  );
  assert.equal(streamed.status, 413);
  assert.equal(calls(), 0);
});

// loadSecret / generateSecret live in src/peer/secret.ts; their tests sit here with the
// rest of authentication (no secret_test.ts was assigned).

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "baton_secret_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadSecret prefers BATON_SECRET over the file", async () => {
  await withTempDir(async (dir) => {
    const file = `${dir}/secret`;
    await Deno.writeTextFile(file, "file-secret-0123456789\n", { mode: 0o600 });
    const r = await loadSecret({ env: "  env-secret-0123456789 \n", file });
    assert.ok(r.ok);
    assert.equal(r.secret, "env-secret-0123456789");
    assert.equal(r.source, "environment variable BATON_SECRET");
    // Readable in the agent's /proc/<pid>/environ by its user's processes: status says so.
    assert.match(r.warning ?? "", /every process of the agent's user can read it/);
  });
});

Deno.test("loadSecret reads and trims the file, without warning at mode 600", async () => {
  await withTempDir(async (dir) => {
    const file = `${dir}/secret`;
    await Deno.writeTextFile(file, "\nfile-secret-0123456789\n\n");
    await Deno.chmod(file, 0o600);
    const r = await loadSecret({ env: undefined, file });
    assert.deepEqual(r, {
      ok: true,
      secret: "file-secret-0123456789",
      source: `file ${file}`,
      file,
    });
  });
});

Deno.test("loadSecret refuses a file readable by group or others, or not the agent's", async () => {
  await withTempDir(async (dir) => {
    const file = `${dir}/secret`;
    await Deno.writeTextFile(file, "file-secret-0123456789");
    for (const mode of [0o644, 0o640, 0o604]) {
      await Deno.chmod(file, mode);
      const r = await loadSecret({ env: undefined, file });
      assert.equal(r.ok, false, `mode ${mode.toString(8)} must be refused`);
      const error = !r.ok ? r.error : "";
      assert.match(error, /readable by group or others \(mode 6[04][04]\).*chmod 600/);
      assert.ok(!error.includes("file-secret-0123456789"), "the error must not show the secret");
      assert.equal(await checkSecretFile(file), error, "reload checks the same");
    }
    await Deno.chmod(file, 0o400);
    assert.equal((await loadSecret({ env: undefined, file })).ok, true, "mode 400 is fine");
    assert.equal(await checkSecretFile(file), null);
    if (Deno.uid() === 0) {
      await Deno.chown(file, 65534, null);
      const r = await loadSecret({ env: undefined, file });
      assert.match(!r.ok ? r.error : "", /owned by uid 65534: expected the agent's user \(uid 0\)/);
      assert.match(await checkSecretFile(file) ?? "", /owned by uid 65534/);
    }
  });
});

Deno.test("loadSecret reads the systemd credential before the manifest's file", async () => {
  await withTempDir(async (dir) => {
    const file = `${dir}/secret`;
    await Deno.writeTextFile(file, "file-secret-0123456789\n", { mode: 0o600 });
    const creds = `${dir}/creds`;
    await Deno.mkdir(creds);
    // No credential in the directory: the file.
    assert.equal((await loadSecret({ env: undefined, credentialsDir: creds, file })).ok, true);
    await Deno.writeTextFile(`${creds}/baton.secret`, "credential-secret-0123456789\n", {
      mode: 0o400,
    });
    const r = await loadSecret({ env: undefined, credentialsDir: creds, file });
    assert.ok(r.ok);
    assert.equal(r.secret, "credential-secret-0123456789");
    assert.equal(r.source, `systemd credential ${creds}/baton.secret`);
    assert.equal(r.warning, undefined);
    await Deno.chmod(`${creds}/baton.secret`, 0o444);
    const loose = await loadSecret({ env: undefined, credentialsDir: creds, file });
    assert.match(!loose.ok ? loose.error : "", /readable by group or others \(mode 444\)/);
  });
});

Deno.test("loadSecret rejects secrets shorter than 16 characters without showing them", async () => {
  const fromEnv = await loadSecret({ env: "short-secret", file: null });
  assert.equal(fromEnv.ok, false);
  const error = !fromEnv.ok ? fromEnv.error : "";
  assert.match(error, /too short: expected at least 16 characters, found 12/);
  assert.ok(!error.includes("short-secret"));
  const empty = await loadSecret({ env: "", file: null });
  assert.equal(empty.ok, false, "a set but empty BATON_SECRET is an error, not a fallback");
  await withTempDir(async (dir) => {
    const file = `${dir}/secret`;
    await Deno.writeTextFile(file, "   tiny  \n", { mode: 0o600 });
    const r = await loadSecret({ env: undefined, file });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.error : "", /too short.*found 4/);
  });
});

Deno.test("loadSecret reports a missing file and a missing configuration", async () => {
  await withTempDir(async (dir) => {
    const r = await loadSecret({ env: undefined, file: `${dir}/nope` });
    assert.deepEqual(r, { ok: false, error: `secret file ${dir}/nope not found` });
    const d = await loadSecret({ env: undefined, file: dir });
    assert.match(!d.ok ? d.error : "", /expected a regular file, found a directory/);
  });
  const none = await loadSecret({ env: undefined, file: null });
  assert.equal(none.ok, false);
  assert.match(!none.ok ? none.error : "", /BATON_SECRET.*secret_file/);
});

Deno.test("generateSecret returns 43 base64url characters, different each time", async () => {
  const a = generateSecret();
  const b = generateSecret();
  assert.match(a, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a, b);
  assert.equal((await loadSecret({ env: a, file: null })).ok, true);
});

Deno.test("RequestVerifier with hosts accepts only requests signed for its own host:port", async () => {
  const secret = "receiver-test-secret-0123456789";
  const verifier = new RequestVerifier(secret, { hosts: ["127.0.0.1:7402"] });
  const body = '{"on":true}';
  const req = async (to: string) => ({
    method: "POST",
    pathWithQuery: "/v1/maintenance",
    headers: new Headers(
      await signRequest(secret, "alpha", "POST", "/v1/maintenance", body, Date.now(), to),
    ),
    body,
  });
  const accepted = await verifier.verify(await req("127.0.0.1:7402"));
  assert.equal(accepted.ok && accepted.node, "alpha");
  const other = await verifier.verify(await req("127.0.0.1:7401"));
  assert.equal(other.ok, false);
  assert.match((other as { reason: string }).reason, /signed for 127\.0\.0\.1:7401/);
  const none = await verifier.verify(await req(""));
  assert.equal(none.ok, false);
  // The receiver's host is covered by the signature: rewriting the header breaks it.
  const forged = await req("127.0.0.1:7401");
  forged.headers.set("X-Baton-To", "127.0.0.1:7402");
  assert.deepEqual(await verifier.verify(forged), { ok: false, reason: "bad signature" });
});

// ---------------------------------------------------------------- issue 11, finding 8

Deno.test("RequestVerifier refuses a request stamped before it started: no replay to a restarted agent", async () => {
  let now = T0;
  const before = new RequestVerifier(SECRET, { now: () => now });
  const req = await signed({ at: T0 });
  assert.equal((await before.verify(req)).ok, true);
  // The agent restarts 1 s later: its replay cache is empty, but the capture is older than it.
  now = T0 + 1_000;
  const restarted = new RequestVerifier(SECRET, { now: () => now });
  const again = await restarted.verify({ ...req, headers: new Headers(req.headers) });
  assert.equal(again.ok, false);
  assert.match(!again.ok ? again.reason : "", /before this receiver started/);
});

Deno.test("RequestVerifier: the default skew window is a few seconds, not 30", async () => {
  const verifier = new RequestVerifier(SECRET, { now: () => T0, notBefore: 0 });
  const old = await verifier.verify(await signed({ at: T0 - 10_000 }));
  assert.deepEqual(old, { ok: false, reason: "stale" });
});
