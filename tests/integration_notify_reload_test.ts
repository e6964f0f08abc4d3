/**
 * Issue 12 leftover: the notification sinks follow the manifest. A real `baton run` starts
 * with an exec sink writing to file A; the manifest is changed to a sink writing to file B and
 * reloaded (`baton reload`, the same path as SIGHUP); the app is then killed: the restart is
 * announced to B only. Waits are polls; no timing decides pass or fail.
 */
import assert from "node:assert/strict";
import { LocalCluster } from "../scripts/local_cluster.ts";

const IT = { sanitizeOps: false, sanitizeResources: false } as const;

function sinkYaml(file: string): string {
  return `  notify:\n    - { exec: ["/bin/sh", "-c", "echo $BATON_EVENT_KIND >> ${file}"] }`;
}

async function lines(file: string): Promise<string[]> {
  const text = await Deno.readTextFile(file).catch(() => "");
  return text.split("\n").filter((l) => l !== "");
}

Deno.test(
  "notify: a reloaded manifest's sinks replace the old ones (restart announced to the new sink only)",
  IT,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "baton-notify-reload-" });
    const [a, b] = [`${dir}/a.log`, `${dir}/b.log`];
    const c = await LocalCluster.create({
      nodes: [{ name: "solo", priority: 100 }],
      clusterExtra: sinkYaml(a),
      apps: () => `  idle:\n    command: ["sleep", "infinity", "${Date.now() % 1e9}"]`,
    });
    let ok = false;
    try {
      await c.startAgent("solo");
      const s = await c.waitRunning("solo", ["idle"], 30_000);
      await c.waitFor("the takeover announced to A", async () => (await lines(a)).length > 0);
      const yaml = await Deno.readTextFile(c.manifest);
      await Deno.writeTextFile(c.manifest, yaml.replace(sinkYaml(a), sinkYaml(b)));
      const r = await c.cli("solo", "reload");
      assert.equal(r.code, 0, r.stderr + r.stdout);
      await c.waitFor("the new sinks loaded", async () => {
        const st = await c.status("solo");
        return st?.events.some((e) => e.kind === "notify_reload") ?? false;
      });
      const beforeA = await lines(a);
      const pid = s.apps[0]!.pid!;
      Deno.kill(pid, "SIGKILL");
      await c.waitFor(
        "the restart announced to B",
        async () => (await lines(b)).includes("restart"),
      );
      // A got nothing after the reload (a moment for a stray delivery to show up).
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(await lines(a), beforeA, "the removed sink got nothing more");
      assert.ok(!beforeA.includes("restart"));
      ok = true;
    } finally {
      if (!ok) {
        const log = await Deno.readTextFile(`${c.dir}/solo.log`).catch(() => "(no log)");
        console.error(log.split("\n").slice(-30).join("\n"));
      }
      await c.stop({ keepDir: !ok });
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
