/**
 * `deno task demo`: a local two-node cluster (alpha active, beta standby, plus a witness) on
 * loopback, with sample apps. It shows, in the terminal:
 *   1. an app killed with SIGKILL and restarted in place (restarts 1);
 *   2. the restarted app killed again: escalation, alpha stops every movable app and marks
 *      itself failed, beta starts them at a new epoch; the non-movable app stays on alpha;
 *   3. `baton clear` on alpha, then `baton switchover` back to alpha.
 * Everything it starts is stopped at the end (pass --keep to leave the cluster running).
 *
 * @module
 */
import { alive, LocalCluster, sampleAppCommand, type Status } from "./local_cluster.ts";

const keep = Deno.args.includes("--keep");
const bold = (s: string) => `\x1b[1m${s}\x1b[0m`;
const dim = (s: string) => `\x1b[2m${s}\x1b[0m`;

function say(s: string) {
  console.log(`\n${bold("==>")} ${bold(s)}`);
}

function show(s: Status | null, name: string) {
  if (!s) {
    console.log(`  ${name}: (not answering)`);
    return;
  }
  const apps = s.apps.map((a) =>
    `${a.name}=${a.state}${a.pid ? `(pid ${a.pid}, restarts ${a.restarts})` : ""}`
  ).join("  ");
  console.log(`  ${s.node.padEnd(6)} ${s.role.toUpperCase().padEnd(8)} epoch ${s.epoch}  ${apps}`);
}

async function showAll(c: LocalCluster) {
  show(await c.status("alpha"), "alpha");
  show(await c.status("beta"), "beta");
}

const yaml = (ports: number[]) => {
  const [web, api] = ports;
  const app = (name: string, port: number | undefined) =>
    [
      `  ${name}:`,
      `    command: ${JSON.stringify(sampleAppCommand(port ?? 0, name))}`,
      `    check: { type: http, url: "http://127.0.0.1:${port}/health", interval: 200ms, timeout: 300ms, failures: 2, initialDelay: 1s }`,
      `    stop: { timeout: 3s }`,
    ].join("\n");
  return [
    app("web", web),
    app("api", api),
    "  logger:",
    `    command: ["sleep", "infinity"]`,
    "    movable: false",
  ].join("\n");
};

const cluster = await LocalCluster.create({
  nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
  witness: true,
  apps: yaml,
  interval: "200ms",
  deadAfter: "1s",
});
let exitCode = 0;
try {
  say(`Starting a witness and two agents on loopback (files in ${cluster.dir})`);
  console.log(dim(`  manifest: ${cluster.manifest}`));
  cluster.startWitness();
  await cluster.startAgent("alpha");
  await cluster.startAgent("beta");
  await cluster.waitRunning("alpha", ["web", "api", "logger"]);
  await cluster.waitRole("beta", "standby");
  await showAll(cluster);

  say("1. kill -9 the web app on alpha: baton restarts it in place");
  let s = (await cluster.status("alpha"))!;
  const pid1 = s.apps.find((a) => a.name === "web")!.pid!;
  console.log(dim(`  kill -9 ${pid1}`));
  Deno.kill(pid1, "SIGKILL");
  s = await cluster.waitFor("a new web pid", async () => {
    const st = await cluster.status("alpha");
    const web = st?.apps.find((a) => a.name === "web");
    return web && web.pid && web.pid !== pid1 && web.state === "running" ? st : null;
  });
  await showAll(cluster);

  say("2. kill -9 it again: the restarted app failed again, so the host is suspect");
  const pid2 = s.apps.find((a) => a.name === "web")!.pid!;
  console.log(dim(`  kill -9 ${pid2}`));
  Deno.kill(pid2, "SIGKILL");
  await cluster.waitRole("alpha", "failed");
  await cluster.waitRunning("beta", ["web", "api"]);
  await showAll(cluster);
  const a = (await cluster.status("alpha"))!;
  console.log(dim("  alpha's last decisions:"));
  for (const e of a.events.slice(-6)) {
    console.log(dim(`    ${e.level} ${e.app ?? "-"} ${e.kind}: ${e.message}`));
  }
  const oldPids = a.apps.filter((x) => x.movable).map((x) => x.pid).filter((p) => p !== null);
  console.log(`  movable apps left on alpha: ${oldPids.filter((p) => alive(p!)).length}`);

  say("3. the operator repairs alpha: `baton clear`, then `baton switchover --to alpha`");
  let r = await cluster.cli("alpha", "clear");
  console.log(dim(`  $ baton clear -n alpha  → ${r.stdout.trim() || r.stderr.trim()}`));
  await cluster.waitRole("alpha", "standby");
  r = await cluster.cli("beta", "switchover", "--to", "alpha");
  console.log(
    dim(`  $ baton switchover -n beta --to alpha  → ${r.stdout.trim() || r.stderr.trim()}`),
  );
  await cluster.waitRunning("alpha", ["web", "api"]);
  await cluster.waitRole("beta", "standby");
  await showAll(cluster);
  say("Done. `baton status` shows the same from the command line:");
  r = await cluster.cli("alpha", "status");
  console.log(r.stdout);
} catch (err) {
  exitCode = 1;
  console.error(`demo failed: ${err instanceof Error ? err.message : err}`);
  console.error(`agent logs are in ${cluster.dir}`);
} finally {
  if (keep) {
    console.log(`cluster left running in ${cluster.dir} (--keep)`);
  } else {
    await cluster.stop({ keepDir: exitCode !== 0 });
  }
}
Deno.exit(exitCode);
