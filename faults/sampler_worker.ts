/**
 * Worker side of {@linkcode WorkerSampler}: runs an {@linkcode InvariantSampler} over the
 * /proc census on its own thread and posts the report back when told to stop.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { netnsOfPid } from "./netns.ts";
import { byApp, findAppProcesses } from "./proc_census.ts";
import { InvariantSampler, type WorkerReply, type WorkerRequest } from "./sampler.ts";

let sampler: InvariantSampler | null = null;

self.onmessage = (e: MessageEvent<WorkerRequest>) => {
  const req = e.data;
  if (req.type === "start") {
    const rule = req.rule;
    const census = () => {
      if (rule.kind === "netns") {
        const procs = findAppProcesses(() => true, req.scripts)
          .map((p) => ({ ...p, host: rule.inodes[String(netnsOfPid(p.pid))] ?? "" }))
          .filter((p) => p.host !== "");
        return byApp(procs, (p) => p.host);
      }
      const procs = findAppProcesses((p) => p.env[rule.mark] === rule.value, req.scripts);
      return byApp(procs, (p) => p.node ?? "?");
    };
    sampler = new InvariantSampler(req.apps, census, req.everyMs);
    sampler.start();
    const reply: WorkerReply = { type: "started", startedAt: sampler.startedAt };
    self.postMessage(reply);
  } else if (req.type === "stop" && sampler) {
    const reply: WorkerReply = { type: "report", report: sampler.stop() };
    self.postMessage(reply);
  }
};
