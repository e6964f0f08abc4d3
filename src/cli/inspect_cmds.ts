/**
 * `baton events` and `baton explain`: read the decision log, and why the node and its apps
 * are in their state.
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import type { StatusDoc } from "../peer/api_types.ts";
import { agentError, CliExit, target, withTarget } from "./common.ts";

/** Adds `events` and `explain` to `program`. */
export function addInspectCommands(program: Command): void {
  withTarget(
    program.command("events")
      .description("the node's decision log (GET /v1/events; --state-dir: its events.jsonl)"),
  )
    .option("--app <app>", "only this app's records (and the node's own)")
    .option("--since <time>", "records since a duration ago (10m, 1h) or a date and time")
    .option("-f, --follow", "keep printing new records")
    .option("--json", "one JSON record per line")
    .option("--limit <n>", "the last N records before following", "100")
    .option("-s, --state-dir <dir>", "read <dir>/events.jsonl (works with the agent stopped)")
    .action(async (opts) => {
      const { apiSource, fileSource, runEvents } = await import("./events_cmd.ts");
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) {
        throw new CliExit(2, `--limit: expected a whole number above 0, found "${opts.limit}"`);
      }
      const t = opts.stateDir === undefined ? await target(opts, false) : null;
      const source = t
        ? apiSource((path) =>
          t.client.get(t.url, path).catch((e) => {
            throw agentError(e, t.node);
          }), t.url)
        : fileSource(opts.stateDir!);
      try {
        await runEvents(source, { ...opts, limit });
      } finally {
        t?.client.close();
      }
    });

  withTarget(
    program.command("explain")
      .description("why the node has its role and each app its state; what the next failure does"),
  )
    .argument("[app]", "only this app")
    .option("--json", "print the explanation as JSON")
    .action(async (app, opts) => {
      const t = await target(opts, false);
      const { explain, formatExplanation } = await import("../explain/explain.ts");
      try {
        const status = await t.client.get<StatusDoc>(t.url, "/v1/status");
        const { events } = await t.client.get<{ events: StatusDoc["events"] }>(
          t.url,
          "/v1/events?n=1000",
        );
        if (app !== undefined && !status.apps.some((a) => a.name === app)) {
          throw new CliExit(
            1,
            `no app "${app}" on node ${status.node} (apps: ${
              status.apps.map((a) => a.name).join(", ")
            })`,
          );
        }
        const now = Date.now();
        const e = explain({
          status,
          events,
          manifest: t.manifest,
          now,
          utcOffsetMin: -new Date(now).getTimezoneOffset(),
        }, app);
        console.log(opts.json ? JSON.stringify(e, null, 2) : formatExplanation(e));
      } catch (err) {
        throw err instanceof CliExit ? err : agentError(err, t.node);
      } finally {
        t.client.close();
      }
    });
}
