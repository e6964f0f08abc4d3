/**
 * Small shared pieces of the fault-injection suite: manifest snippets for sample apps,
 * bounded polling, sleeping, and a log line format for measured values.
 *
 * @module
 */
import { sampleAppCommand } from "../scripts/local_cluster.ts";

/** Options of one app entry in a manifest. */
export interface AppEntry {
  name: string;
  port: number;
  movable?: boolean;
  /** Extra sample-app arguments (`--crash-after 200`, `--ignore-sigterm`). */
  extra?: string[];
  /** Full argv instead of the sample app. */
  command?: string[];
  /** `check:` mapping as YAML flow text; default an HTTP check of `/health`. */
  check?: string | null;
  /** `restart:` mapping as YAML flow text. */
  restart?: string;
  /** `stop:` mapping as YAML flow text. */
  stop?: string;
  /** Extra environment (e.g. a run marker the /proc census filters on). */
  env?: Record<string, string>;
}

/** Default check: HTTP `/health` every 200 ms, 2 failures of 300 ms. */
export function httpCheck(port: number): string {
  return `{ type: http, url: "http://127.0.0.1:${port}/health", interval: 200ms, ` +
    `timeout: 300ms, failures: 2, initialDelay: 1s }`;
}

/** The `apps:` body (indented by 2) for these entries. */
export function appsYaml(entries: AppEntry[]): string {
  return entries.map((e) => {
    const command = e.command ?? sampleAppCommand(e.port, e.name, ...(e.extra ?? []));
    const check = e.check === undefined ? httpCheck(e.port) : e.check;
    return [
      `  ${e.name}:`,
      `    command: ${JSON.stringify(command)}`,
      ...(e.env ? [`    env: ${JSON.stringify(e.env)}`] : []),
      ...(e.movable === false ? ["    movable: false"] : []),
      ...(check ? [`    check: ${check}`] : []),
      `    restart: ${e.restart ?? "{ limit: 1, window: 10m, backoff: 200ms, backoffMax: 2s }"}`,
      `    stop: ${e.stop ?? "{ timeout: 2s }"}`,
    ].join("\n");
  }).join("\n");
}

/** Environment variable that marks the apps of one test run, for the /proc census. */
export const RUN_MARK = "BATON_FAULTS_RUN";

/** A fresh run marker value. */
export function newRunId(): string {
  return crypto.randomUUID();
}

/** Sleep. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll until truthy (shared with the loopback test clusters). */
export { poll } from "../scripts/local_cluster.ts";

/** Print a measured value (tests never assert timings; they report them). */
export function measured(test: string, text: string): void {
  console.log(`[faults] ${test}: ${text}`);
}
