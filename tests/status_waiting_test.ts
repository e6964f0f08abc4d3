/**
 * Issue 12 leftover: a switchover that waits (for its target to be seen as an available
 * standby, then for the target to acknowledge the handover) is shown in `/v1/status`, in
 * `baton status` and on the status page, saying what it waits for.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  appSpec,
  boot,
  HB,
  makeManifest,
  ofType,
  replies,
  runCluster,
} from "./helpers/core_fixtures.ts";
import { buildStatus } from "../src/agent/status.ts";
import { formatStatus } from "../src/status_text.ts";
import { renderMain } from "../src/page/render.ts";

Deno.test("status: a waiting switchover, then its handover waiting for the ack, are shown in the document, the text and the page", () => {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: [appSpec("web")] });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  runCluster([a, b], 0, 8_000);
  assert.equal(a.state.role, "active");
  // beta goes quiet: alpha no longer sees it as an available standby.
  a.ticks(8_100, 8_000 + HB.deadAfterMs + 500, 100);
  const t = 8_000 + HB.deadAfterMs + 600;
  assert.deepEqual(replies(a.command({ type: "switchover", to: "beta" }, t, "sw")), []);

  const doc = buildStatus(a.state, t + 1_000, []);
  assert.ok(doc.switchover, "expected the waiting switchover in the status document");
  assert.equal(doc.switchover.to, "beta");
  assert.match(
    doc.switchover.waitingFor,
    /^beta to be seen as an available standby \(now: beta unreachable/,
  );
  assert.equal(doc.switchover.sinceMs, 1_000);
  assert.equal(doc.switchover.leftMs, HB.deadAfterMs - 1_000);
  assert.match(
    formatStatus(doc),
    /switchover: waiting for beta to be seen as an available standby/,
  );
  const page = renderMain({ self: doc, peers: [], time: new Date(0).toISOString() });
  assert.match(page, /switchover waiting → beta/i);
  assert.match(page, /switchover waiting for beta to be seen as an available standby/);

  // beta is heard again: the handover starts and waits for beta's acknowledgement.
  const heard = a.hear(b, t + 1_100);
  assert.deepEqual(ofType(heard, "send_prepare").map((p) => p.to), ["beta"]);
  const during = buildStatus(a.state, t + 1_200, []);
  assert.equal(during.switchover, null);
  assert.equal(during.handover?.phase, "preparing");
  assert.equal(during.handover?.waitingFor, "beta to acknowledge the handover");
  assert.match(formatStatus(during), /handover: switchover to beta \(preparing: waiting for beta/);
  assert.match(
    renderMain({ self: during, peers: [], time: new Date(0).toISOString() }),
    /handover waiting for beta to acknowledge the handover/,
  );
});
