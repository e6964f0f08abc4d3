/**
 * `baton run` (the agent in the foreground) and the commands that talk to it: `status`,
 * `reload`, `switchover`, `maintenance`, `clear`.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import type { StatusDoc } from "../peer/api_types.ts";
import { formatStatus } from "../status_text.ts";
import { MANIFEST_HELP, manifestPath } from "./manifest_path.ts";
import {
  agentError,
  CliExit,
  loadOrExit,
  nodeOrExit,
  onOff,
  post,
  secretOrExit,
  target,
  withTarget,
} from "./common.ts";

/** Adds `run`, `status`, `reload`, `switchover`, `maintenance` and `clear` to `program`. */
export function addAgentCommands(program: Command): void {
  program.command("run")
    .description("run the agent in the foreground (apps keep running if it exits)")
    .option("-m, --manifest <file>", MANIFEST_HELP)
    .option("-n, --node <name>", "this node's name (default: $BATON_NODE or the host name)")
    .option(
      "-s, --state-dir <dir>",
      "state directory (default: $BATON_STATE_DIR or /var/lib/baton/<node>)",
    )
    .addOption(
      new Option("--mode <mode>", "start-up role").choices(["auto", "active", "standby"] as const)
        .default("auto" as const),
    )
    .option("--http <host:port>", "serve the status page and /metrics there (default: node URL)")
    .action(async (opts) => {
      const path = manifestPath(opts.manifest);
      const manifest = await loadOrExit(path);
      const node = nodeOrExit(manifest, opts.node);
      const { secret, warning, file } = await secretOrExit(manifest, true);
      // Apps get a clean environment anyway (app_env.ts); checks and hooks inherit the rest.
      Deno.env.delete("BATON_SECRET");
      Deno.env.delete("CREDENTIALS_DIRECTORY");
      const stateDir = opts.stateDir ?? Deno.env.get("BATON_STATE_DIR") ??
        `/var/lib/baton/${node}`;
      const { runAgent } = await import("../agent/run_agent.ts");
      const code = await runAgent({
        manifest,
        manifestPath: path,
        node,
        stateDir,
        mode: opts.mode,
        secret,
        secretFile: file ?? null,
        secretWarnings: warning === undefined ? [] : [warning],
        ...(opts.http ? { http: opts.http } : {}),
      });
      if (code !== 0) throw new CliExit(code, "agent stopped");
    });

  withTarget(program.command("status").description("show what the agent is doing"))
    .option("--json", "print the status document (the same as GET /v1/status)")
    .action(async (opts) => {
      const t = await target(opts, false);
      let doc: StatusDoc;
      try {
        doc = await t.client.get<StatusDoc>(t.url, "/v1/status");
      } catch (err) {
        throw agentError(err, t.node);
      } finally {
        t.client.close();
      }
      console.log(opts.json ? JSON.stringify(doc, null, 2) : formatStatus(doc));
    });

  withTarget(program.command("reload").description("re-read the manifest on the running agent"))
    .action(async (opts) => {
      const r = await post(opts, "/v1/reload", {});
      for (const w of (r.warnings as string[] | undefined) ?? []) console.error(w);
      console.log(`reloaded: manifest ${r.hash}`);
    });

  withTarget(
    program.command("switchover").description("planned move of every movable app to a standby"),
  )
    .option("--to <node>", "standby to move to (default: the best one)")
    .action(async (opts) => {
      const r = await post(opts, "/v1/switchover", { to: opts.to ?? null });
      console.log(`switched over to ${r.to}${r.confirmed ? "" : ` (${r.detail})`}`);
    });

  withTarget(
    program.command("maintenance").description("maintenance mode: no restarts, no moves"),
  )
    .addArgument(onOff())
    .action(async (state, opts) => {
      if (state !== "on" && state !== "off") {
        throw new CliExit(2, `expected "on" or "off", got "${state}"`);
      }
      const r = await post(opts, "/v1/maintenance", { on: state === "on" });
      console.log(`maintenance ${r.maintenance ? "on" : "off"}`);
    });

  withTarget(
    program.command("clear").description(
      "clear the restart counters and escalations (a failed node goes back to standby)",
    ),
  )
    .action(async (opts) => {
      const r = await post(opts, "/v1/clear", {});
      console.log(`cleared: node is ${r.role}`);
    });

  withTarget(
    program.command("fence-ok")
      .description("confirm NODE is powered off: a takeover waiting for its fence goes on"),
  )
    .argument("<node>", "the node that was fenced by hand")
    .action(async (node, opts) => {
      const r = await post(opts, "/v1/fence-ok", { node });
      console.log(`fence of ${r.node} confirmed: the takeover goes on`);
    });
}
