/**
 * Real daemons under a real agent (`baton run`, one node): nginx in its default daemon mode,
 * supervised through `pidFile:` (followed, restarted after `kill -9` of its master, adopted with
 * the same PID after an agent restart), and Redis, checked through `redis-cli ping`. Both are
 * Debian packages installed by .ci/run (`nginx-light`, `redis-server`). Every wait is bounded
 * and generous; no timing is asserted.
 */
import assert from "node:assert/strict";
import { freePort, killGroup, LocalCluster } from "../scripts/local_cluster.ts";
import { readPidFile } from "../src/supervisor/pid_file.ts";
import { isSameProcess, processGroupMembers, readProcStat } from "../src/supervisor/proc.ts";

const IT = { sanitizeOps: false, sanitizeResources: false } as const;
const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find(_exists) ?? null;
const REDIS = ["/usr/bin/redis-server"].find(_exists) ?? null;

function _exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** An nginx config in `dir`: default daemon mode, one loopback port, everything in `dir`. */
function nginxConfig(dir: string, port: number): string {
  return [
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log;`,
    "worker_processes 1;",
    "events { worker_connections 64; }",
    "http {",
    "  access_log off;",
    ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) =>
      `  ${t}_temp_path ${dir}/${t};`
    ),
    `  server { listen 127.0.0.1:${port}; location / { return 200 "baton-nginx\\n"; } }`,
    "}",
    "",
  ].join("\n");
}

async function curl(port: number): Promise<string | null> {
  const out = await new Deno.Command("curl", {
    args: ["-sf", "--max-time", "2", `http://127.0.0.1:${port}/`],
    stdout: "piped",
    stderr: "null",
  }).output();
  return out.success ? new TextDecoder().decode(out.stdout) : null;
}

function appOf(s: { apps: { name: string; pid: number | null; state: string }[] }, name: string) {
  const a = s.apps.find((x) => x.name === name);
  assert.ok(a, `expected app ${name} in status`);
  return a;
}

Deno.test({
  name: "nginx in daemon mode: followed through pidFile, restarted after kill -9 of its master, " +
    "adopted with the same PID after an agent restart",
  ignore: NGINX === null,
  ...IT,
  fn: async () => {
    const port = freePort();
    const c = await LocalCluster.create({
      nodes: [{ name: "solo", priority: 0 }],
      apps: () => "",
    });
    const dir = `${c.dir}/nginx`;
    await Deno.mkdir(dir);
    await Deno.writeTextFile(`${dir}/nginx.conf`, nginxConfig(dir, port));
    await c.writeManifest([
      "  web:",
      `    command: ["${NGINX}", "-c", "${dir}/nginx.conf", "-p", "${dir}", "-e", "${dir}/error.log"]`,
      `    pidFile: ${dir}/nginx.pid`,
      `    check: { type: http, url: "http://127.0.0.1:${port}/", interval: 500ms, timeout: 1s }`,
      "    restart: { limit: 5, window: 10m }",
    ].join("\n"));
    try {
      await c.startAgent("solo");
      let s = await c.waitRunning("solo", ["web"], 30_000);
      const first = appOf(s, "web").pid!;
      assert.equal(first, readPidFile(`${dir}/nginx.pid`), "the PID followed is the master's");
      const stat = readProcStat(first)!;
      assert.equal(stat.pgid, first, "the master leads its own group (it forked and setsid)");
      assert.equal(await c.waitFor("nginx to answer", () => curl(port), 15_000), "baton-nginx\n");

      // kill -9 of the master alone, as an operator or the OOM killer would: a failure,
      // restarted (the launcher's exit 0 was not one). Its workers, orphaned and still holding
      // the port, are stopped with the rest of the app before the new master starts.
      assert.equal(appOf(s, "web").state, "running");
      const workers = processGroupMembers(first).filter((p) => p !== first);
      assert.ok(workers.length > 0, "expected nginx workers in the master's group");
      Deno.kill(first, "SIGKILL");
      s = await c.waitFor("a new nginx master", async () => {
        const st = await c.status("solo");
        const a = st?.apps.find((x) => x.name === "web");
        return st && a && a.state === "running" && a.pid && a.pid !== first ? st : null;
      }, 30_000);
      const second = appOf(s, "web").pid!;
      assert.equal(second, readPidFile(`${dir}/nginx.pid`));
      assert.deepEqual(processGroupMembers(first), [], "expected the old master's workers gone");
      assert.equal(
        await c.waitFor("nginx to answer again", () => curl(port), 15_000),
        "baton-nginx\n",
      );
      const restarts = s.apps.find((x) => x.name === "web")!.restarts;
      assert.ok(restarts >= 1, `expected a restart counted, found ${restarts}`);

      // Agent restart: the same master is adopted, not restarted.
      await c.killAgent("solo", "SIGKILL");
      assert.ok(isSameProcess(second, readProcStat(second)!.startTime), "nginx outlives the agent");
      await c.startAgent("solo");
      s = await c.waitRunning("solo", ["web"], 30_000);
      assert.equal(appOf(s, "web").pid, second, "adopted with the same PID");
      assert.ok(
        s.events.some((e) => e.kind === "adopted" && e.app === "web"),
        `expected an adopted event, found ${s.events.map((e) => e.kind).join(", ")}`,
      );
      assert.equal(await curl(port), "baton-nginx\n");
    } finally {
      const pid = readPidFile(`${dir}/nginx.pid`);
      await c.stop();
      if (pid !== null) killGroup(pid);
    }
  },
});

Deno.test({
  name:
    "Redis under baton (examples/redis.yaml): answers redis-cli ping, restarted after kill -9, " +
    "its output in the rotated log",
  ignore: REDIS === null,
  ...IT,
  fn: async () => {
    const port = freePort();
    const c = await LocalCluster.create({ nodes: [{ name: "solo", priority: 0 }], apps: () => "" });
    const dir = `${c.dir}/redis`;
    await Deno.mkdir(dir);
    // The apps section of examples/redis.yaml as shipped, on a free port and a temp directory.
    const example = await Deno.readTextFile(new URL("../examples/redis.yaml", import.meta.url));
    const apps = example.slice(example.indexOf("\napps:\n") + 7)
      .replaceAll("6379", String(port)).replaceAll("/var/lib/redis", dir)
      .replace("  redis:", "  cache:");
    await c.writeManifest(apps);
    const ping = async () => {
      const out = await new Deno.Command("redis-cli", {
        args: ["-p", String(port), "ping"],
        stdout: "piped",
        stderr: "null",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim();
      return text === "PONG" ? text : null;
    };
    try {
      await c.startAgent("solo");
      const s = await c.waitRunning("solo", ["cache"], 30_000);
      const first = appOf(s, "cache").pid!;
      assert.equal(await c.waitFor("redis to answer", ping, 15_000), "PONG");
      killGroup(first);
      await c.waitFor("a new redis", async () => {
        const a = (await c.status("solo"))?.apps.find((x) => x.name === "cache");
        return a && a.state === "running" && a.pid && a.pid !== first;
      }, 30_000);
      assert.equal(await c.waitFor("redis to answer again", ping, 15_000), "PONG");
      const log = await Deno.readTextFile(`${c.stateDir("solo")}/logs/cache.log`);
      assert.match(log, /Ready to accept connections/);
    } finally {
      await c.stop();
    }
  },
});
