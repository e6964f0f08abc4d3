/**
 * A man in the middle for the fault suite: an HTTP proxy that forwards every request to
 * `--to host:port` and, depending on the mode written in `--mode-file` (read per request),
 * answers or rewrites the replies the way a broken proxy or an attacker would:
 *
 * - `pass`: forward both ways untouched;
 * - `503`: answer every request `503 Service Unavailable` itself (a proxy whose backend is
 *   down, standing at a baton witness's URL);
 * - `forge-epoch`: forward, but rewrite a heartbeat reply into "I am active at a huge epoch",
 *   in turn with epoch 2^53−1 and the original signature, with epoch +5 and no signature, with
 *   epoch +5 and the original signature (it cannot sign: it has no secret);
 * - `forge-grant`: answer the witness beats of `--victim` (default beta) "nobody is active"
 *   and its claims `{granted: true}` itself, in turn unsigned and with a signature header that
 *   belongs to nothing; the other nodes' requests pass.
 *
 * Each forged or refused reply is counted in `<mode-file>.count` (JSON `{mode: n}`), so a test
 * can prove the attack took place. Run it inside a host's namespace, in front of the real
 * listener (an nftables redirect sends the victim's connections to it).
 *
 * `deno run -A faults/mitm_proxy.ts --listen 0.0.0.0:7501 --to 10.77.1.3:7401 --mode-file f`
 *
 * @module
 */

const arg = (k: string): string => {
  const i = Deno.args.indexOf(k);
  const v = i >= 0 ? Deno.args[i + 1] : undefined;
  if (v === undefined) throw new Error(`expected ${k} <value>, found none`);
  return v;
};
const [listenHost = "0.0.0.0", listenPort = "0"] = arg("--listen").split(":");
const to = arg("--to");
const modeFile = arg("--mode-file");
const victim = Deno.args.includes("--victim") ? arg("--victim") : "beta";
const SIG = "x-baton-reply-signature";
const HOP = new Set(["connection", "content-length", "transfer-encoding", "keep-alive", "host"]);

const counts: Record<string, number> = {};
let turn = 0;

function mode(): string {
  try {
    return Deno.readTextFileSync(modeFile).trim() || "pass";
  } catch {
    return "pass";
  }
}

function count(what: string): void {
  counts[what] = (counts[what] ?? 0) + 1;
  try {
    Deno.writeTextFileSync(`${modeFile}.count.tmp`, JSON.stringify(counts));
    Deno.renameSync(`${modeFile}.count.tmp`, `${modeFile}.count`);
  } catch { /* the test reads what it can */ }
}

function copyHeaders(from: Headers): Headers {
  const h = new Headers();
  for (const [k, v] of from) if (!HOP.has(k.toLowerCase())) h.set(k, v);
  return h;
}

function json(status: number, body: unknown, headers = new Headers()): Response {
  headers.set("content-type", "application/json");
  return new Response(JSON.stringify(body), { status, headers });
}

Deno.serve({ hostname: listenHost, port: Number(listenPort), onListen() {} }, async (req) => {
  const m = mode();
  const url = new URL(req.url);
  if (m === "503") {
    count("503");
    return new Response("<html><body><h1>503 Service Unavailable</h1></body></html>", {
      status: 503,
      headers: { "content-type": "text/html" },
    });
  }
  const body = req.method === "GET" || req.method === "HEAD" ? null : await req.arrayBuffer();
  if (
    m === "forge-grant" && url.pathname.startsWith("/v1/witness/") &&
    req.headers.get("x-baton-node") === victim
  ) {
    const claim = url.pathname === "/v1/witness/claim";
    const beat = body ? JSON.parse(new TextDecoder().decode(body)) : {};
    const headers = new Headers();
    // In turn: unsigned, and with a signature header that belongs to nothing.
    if (turn++ % 2 === 1) headers.set(SIG, "v1=" + "0".repeat(64));
    count(claim ? "forged-grant" : "forged-beat");
    return json(200, {
      witness: "baton",
      ok: true,
      ...(claim ? { granted: true, reason: "granted" } : {}),
      active: claim ? { node: beat.node ?? "beta", epoch: beat.epoch ?? 1, ageMs: 0 } : null,
    }, headers);
  }
  let res: Response;
  try {
    res = await fetch(`http://${to}${url.pathname}${url.search}`, {
      method: req.method,
      headers: copyHeaders(req.headers),
      ...(body ? { body } : {}),
      redirect: "manual",
      signal: AbortSignal.timeout(5_000),
    });
  } catch {
    return new Response("bad gateway", { status: 502 });
  }
  const text = await res.text();
  const headers = copyHeaders(res.headers);
  if (m === "forge-epoch" && url.pathname === "/v1/heartbeat" && res.status === 200) {
    try {
      const info = JSON.parse(text);
      const t = turn++ % 3;
      info.role = "active";
      info.roleSeq = (info.roleSeq ?? 0) + 1000;
      info.epoch = t === 0 ? 2 ** 53 - 1 : (info.epoch ?? 0) + 5;
      if (t === 1) headers.delete(SIG);
      count("forged-heartbeat");
      return json(200, info, headers);
    } catch { /* not JSON: pass it on */ }
  }
  return new Response(text, { status: res.status, headers });
});
