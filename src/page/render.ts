/**
 * The status page as one self-contained HTML document (inline style and script, no external
 * asset): a server-rendered snapshot that reads without JavaScript, whose `<main>` the inline
 * script replaces with each fragment the live stream sends. Pure functions of a
 * {@linkcode ClusterSnapshot}; every value is escaped. The status document holds no secret,
 * and no fence output is ever captured, so none can appear here.
 *
 * @example
 * ```ts
 * import type { ClusterView } from "./cluster_view.ts";
 * declare const view: ClusterView;
 * const html = renderPage(view.snapshot(), "/stream");
 * ```
 *
 * @module
 */
import type { AppStatus, StatusDoc } from "../peer/api_types.ts";
import type { EventRecord } from "../store/event_log.ts";
import type { ClusterSnapshot, PeerView } from "./cluster_view.ts";

/** Escape text for HTML content and attribute values. */
export function esc(v: unknown): string {
  return String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Milliseconds as a short age: "850 ms", "12 s", "3 min", "2 h". */
export function age(ms: number | null): string {
  if (ms === null) return "—";
  if (ms < 1000) return `${Math.round(ms / 50) * 50} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}

const _STYLE = `
:root{--bg:#0f1419;--card:#182029;--line:#2a3542;--fg:#e6edf3;--mute:#8b98a5;--ok:#3fb950;
--info:#58a6ff;--warn:#d29922;--bad:#f85149}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header{display:flex;align-items:baseline;gap:16px;padding:14px 24px;border-bottom:1px solid var(--line)}
h1{font-size:20px;margin:0}h2{font-size:15px;margin:0 0 8px}.mute{color:var(--mute)}
main{padding:16px 24px;display:grid;gap:16px}
.nodes{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600;
text-transform:uppercase;letter-spacing:.04em}
.b-active,.b-running,.b-ok{background:#1f3d2a;color:var(--ok)}
.b-standby,.b-starting,.b-stopping{background:#1d2d44;color:var(--info)}
.b-failed,.b-down,.b-backoff,.b-error{background:#4a1f22;color:var(--bad)}
.b-stopped,.b-unknown{background:#2a3542;color:var(--mute)}.b-warn{background:#3d3217;color:var(--warn)}
table{width:100%;border-collapse:collapse;margin-top:8px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--mute);font-weight:500;font-size:12px}td.num{font-variant-numeric:tabular-nums}
.warnings{background:#3a1618;border:1px solid var(--bad);color:#ffb3ae;border-radius:8px;
padding:10px 16px}.warnings li{margin:2px 0}.warnings strong{color:var(--bad)}
.lvl-error{color:var(--bad)}.lvl-warn{color:var(--warn)}.lvl-info{color:var(--mute)}
.meta{display:flex;gap:14px;flex-wrap:wrap;margin-top:4px}.wait{color:var(--warn);margin-top:4px}
#live{margin-left:auto;font-size:12px}
`;

const _SCRIPT = `
(function(){var m=document.getElementById("m"),l=document.getElementById("live");
if(!window.EventSource){return;}var s=new EventSource(STREAM);
s.onmessage=function(e){m.innerHTML=JSON.parse(e.data);l.textContent="live";l.className="badge b-ok";};
s.onerror=function(){l.textContent="reconnecting";l.className="badge b-warn";};})();
`;

/** The whole document; `stream` is the path of the live stream. */
export function renderPage(snap: ClusterSnapshot, stream: string): string {
  const s = snap.self;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>baton · ${esc(s.cluster)}</title>
<noscript><meta http-equiv="refresh" content="5"></noscript>
<style>${_STYLE}</style></head><body>
<header><h1>baton · ${esc(s.cluster)}</h1>
<span class="mute">as seen by ${esc(s.node)}</span>
<span id="live" class="badge b-unknown">snapshot</span></header>
<main id="m">${renderMain(snap)}</main>
<script>var STREAM=${JSON.stringify(stream)};${_SCRIPT}</script>
</body></html>`;
}

/** The part the live stream replaces. */
export function renderMain(snap: ClusterSnapshot): string {
  const s = snap.self;
  const warnings = [...s.warnings];
  for (const p of snap.peers) {
    const seen = s.peers.find((x) => x.name === p.name);
    if (seen && !seen.reachable) warnings.push(`peer ${p.name} unreachable`);
    for (const w of p.status?.warnings ?? []) warnings.push(`${p.name}: ${w}`);
  }
  if (s.witness && !s.witness.reachable) warnings.push(`witness ${s.witness.url} unreachable`);
  const parts: string[] = [];
  if (warnings.length > 0) {
    parts.push(
      `<section class="warnings"><strong>${warnings.length} warning(s)</strong><ul>` +
        warnings.map((w) => `<li>${esc(w)}</li>`).join("") + `</ul></section>`,
    );
  }
  parts.push(`<section class="nodes">${renderNode(s, null)}`);
  // Every peer the node knows of, with its own status where it was fetched.
  for (const seen of s.peers) {
    const p = snap.peers.find((x) => x.name === seen.name) ??
      { name: seen.name, url: seen.url, status: null, ageMs: null, error: null };
    parts.push(renderPeer(s, p));
  }
  parts.push(`</section>`);
  parts.push(renderWitness(s));
  parts.push(renderEvents(snap));
  parts.push(`<p class="mute">updated ${esc(snap.time.slice(11, 19))} UTC</p>`);
  return parts.join("\n");
}

function badge(text: string, cls = text): string {
  return `<span class="badge b-${esc(cls)}">${esc(text)}</span>`;
}

function renderNode(s: StatusDoc, note: string | null, unreachable = false): string {
  const flags = [
    unreachable ? badge("unreachable", "down") : "",
    s.maintenance ? badge("maintenance", "warn") : "",
    s.handover ? badge(`handover ${s.handover.phase} → ${s.handover.to}`, "warn") : "",
    s.switchover ? badge(`switchover waiting → ${s.switchover.to ?? "a standby"}`, "warn") : "",
  ].join(" ");
  // What a switchover or handover in progress waits for (older agents send neither field).
  const waits = [
    s.switchover
      ? `switchover waiting for ${s.switchover.waitingFor} (asked ${
        age(s.switchover.sinceMs)
      } ago, refused in ${age(s.switchover.leftMs)} if still not)`
      : "",
    s.handover?.waitingFor ? `handover waiting for ${s.handover.waitingFor}` : "",
  ].filter((x) => x !== "").map((x) => `<div class="wait" data-wait>${esc(x)}</div>`).join("");
  return `<div class="card" data-node="${esc(s.node)}">
<h2>${esc(s.node)} ${badge(s.role)} ${flags}</h2>
<div class="meta mute"><span>epoch <b class="num">${esc(s.epoch)}</b></span>
<span>manifest ${esc(s.manifestHash.slice(0, 12))}</span>${
    note ? `<span>${esc(note)}</span>` : ""
  }</div>
<div class="mute">${esc(s.failedReason ?? s.roleReason)}</div>${waits}
${renderApps(s.apps)}</div>`;
}

function renderPeer(self: StatusDoc, p: PeerView): string {
  const seen = self.peers.find((x) => x.name === p.name);
  if (p.status) {
    const down = seen !== undefined && !seen.reachable;
    return renderNode(p.status, `${down ? "last " : ""}fetched ${age(p.ageMs)} ago`, down);
  }
  const role = seen?.role ?? "unknown";
  return `<div class="card" data-node="${esc(p.name)}">
<h2>${esc(p.name)} ${badge(seen?.reachable ? role : "down", seen?.reachable ? role : "down")}</h2>
<div class="meta mute"><span>epoch <b class="num">${esc(seen?.epoch ?? 0)}</b></span>
<span>last heartbeat ${esc(age(seen?.lastHeartbeatAgeMs ?? null))} ago</span></div>
<div class="mute">status not fetched${p.error ? `: ${esc(p.error)}` : " yet"}</div></div>`;
}

function renderApps(apps: AppStatus[]): string {
  if (apps.length === 0) return `<p class="mute">no apps</p>`;
  const rows = apps.map((a) => {
    const cls = a.escalated ? "failed" : a.state;
    const check = a.lastCheck
      ? `${a.lastCheck.ok ? badge("ok") : badge("failing", "error")} <span class="mute">${
        esc(age(a.lastCheck.ageMs))
      } ago</span>`
      : `<span class="mute">${esc(a.check)}</span>`;
    return `<tr data-app="${esc(a.name)}"><td><b>${esc(a.name)}</b>${
      a.movable ? "" : ' <span class="mute">(local)</span>'
    }</td><td>${badge(a.escalated ? "escalated" : a.state, cls)}</td>` +
      `<td class="num">${esc(a.pid ?? "—")}</td>` +
      `<td class="num">${esc(a.restarts)} <span class="mute">(${
        esc(a.totalRestarts)
      } total)</span></td>` +
      `<td class="num">${esc(age(a.uptimeMs))}</td><td>${check}</td></tr>`;
  }).join("");
  return `<table><thead><tr><th>app</th><th>state</th><th>pid</th><th>restarts</th>` +
    `<th>up</th><th>last check</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function renderWitness(s: StatusDoc): string {
  if (!s.witness) return `<div class="card"><h2>witness</h2><span class="mute">none</span></div>`;
  const w = s.witness;
  return `<div class="card"><h2>witness ${badge(w.reachable ? "ok" : "down")}</h2>
<div class="meta mute"><span>${esc(w.url)}</span><span>last answer ${
    esc(age(w.ageMs))
  } ago</span></div></div>`;
}

function renderEvents(snap: ClusterSnapshot): string {
  const all: EventRecord[] = [...snap.self.events];
  for (const p of snap.peers) all.push(...(p.status?.events ?? []));
  const latest = all.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0))
    .slice(0, 15);
  const rows = latest.map((e) =>
    `<tr class="lvl-${esc(e.level)}"><td class="num">${esc(e.time.slice(11, 23))}</td>` +
    `<td>${esc(e.node)}</td><td>${esc(e.app ?? "")}</td><td>${esc(e.kind)}</td>` +
    `<td style="color:var(--fg)">${esc(e.message)}</td></tr>`
  ).join("");
  return `<div class="card"><h2>latest decisions</h2><table><thead><tr><th>time (UTC)</th>` +
    `<th>node</th><th>app</th><th>kind</th><th>reason</th></tr></thead><tbody>${rows}` +
    `</tbody></table></div>`;
}
