/**
 * Helpers shared by the CLI's commands: the exit error, manifest/node/secret resolution (or
 * an exit with the reason), and the client of a running agent.
 *
 * @module
 */
import { Argument, Command, type OptionValues } from "@commander-js/extra-typings";
import { formatDiagnostic, loadManifestFile, resolveNodeName } from "../manifest/load.ts";
import type { Manifest } from "../manifest/types.ts";
import { ENV_SECRET_WARNING, loadSecret } from "../peer/secret.ts";
import { readyWaitBoundMs } from "../core/ready_wait.ts";
import { PeerClient, PeerError } from "../peer/client.ts";
import { MANIFEST_HELP, manifestPath } from "./manifest_path.ts";

/** Thrown to end a command with a message and an exit code. */
export class CliExit extends Error {
  /** @param code process exit code */
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** Load and validate the manifest, or end with its diagnostics. */
export async function loadOrExit(path: string, warn = true): Promise<Manifest> {
  const r = await loadManifestFile(path);
  if (warn) { for (const w of r.warnings) console.error(formatDiagnostic(w)); }
  if (!r.ok) {
    for (const e of r.errors) console.error(formatDiagnostic(e));
    throw new CliExit(1, `${path}: ${r.errors.length} error(s)`);
  }
  return r.manifest;
}

/** The node this command is about (`--node`, `$BATON_NODE`, the host name), or end. */
export function nodeOrExit(manifest: Manifest, flag: string | undefined): string {
  const r = resolveNodeName(manifest, flag, Deno.env.get("BATON_NODE"), Deno.hostname());
  if (!r.ok) throw new CliExit(2, r.error);
  return r.node;
}

/** The cluster secret (`$BATON_SECRET` or `cluster.secretFile`), or end. */
export async function secretOrExit(manifest: Manifest, forAgent = false) {
  const r = await loadSecret({
    env: Deno.env.get("BATON_SECRET"),
    credentialsDir: Deno.env.get("CREDENTIALS_DIRECTORY"),
    file: manifest.cluster.secretFile,
  });
  if (!r.ok) throw new CliExit(2, r.error);
  // BATON_SECRET is a warning for the agent that keeps it, not for a command that uses it once.
  const warn = r.warning !== undefined && (forAgent || r.warning !== ENV_SECRET_WARNING);
  if (warn) console.error(`baton: warning: ${r.warning}`);
  return r;
}

/** Common options of the commands that talk to a running agent. */
export interface TargetOpts {
  manifest?: string;
  node?: string;
  url?: string;
}

/** The manifest, node, URL and a client for a command that talks to a running agent. */
export async function target(opts: TargetOpts, needSecret: boolean) {
  // Warnings are for `validate` and `run`; a status read should print only the status.
  const manifest = await loadOrExit(manifestPath(opts.manifest), false);
  const node = nodeOrExit(manifest, opts.node);
  const url = opts.url ?? manifest.nodes[node]?.url ?? "";
  const secret = needSecret ? (await secretOrExit(manifest)).secret : "unused-for-reads-0000";
  const caCert = manifest.cluster.tls?.ca ? await Deno.readTextFile(manifest.cluster.tls.ca) : null;
  // A switchover waits for the apps to be ready on the target (core/ready_wait.ts).
  const timeoutMs = 130_000 + readyWaitBoundMs(manifest);
  const client = new PeerClient({ node, secret, timeoutMs, caCert });
  return { manifest, node, url, client };
}

/** The error of a failed exchange with an agent; "no answer" says which agent to start. */
export function agentError(err: unknown, node: string): CliExit {
  if (!(err instanceof PeerError)) return new CliExit(1, String(err));
  const hint = err.httpStatus === 0
    ? `; is the agent of node "${node}" running ("baton run")?`
    : "";
  return new CliExit(1, err.message + hint);
}

/** POST `body` to the agent of `opts` and return its JSON answer, or end with its error. */
export async function post(
  opts: TargetOpts,
  path: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const t = await target(opts, true);
  try {
    return await t.client.post<Record<string, unknown>>(t.url, path, body);
  } catch (err) {
    throw agentError(err, t.node);
  } finally {
    t.client.close();
  }
}

/** Adds the `--manifest`, `--node` and `--url` options of commands that talk to an agent. */
export function withTarget<A extends unknown[], O extends OptionValues>(cmd: Command<A, O>) {
  return cmd
    .option("-m, --manifest <file>", MANIFEST_HELP)
    .option("-n, --node <name>", "node to talk to (default: $BATON_NODE or this host's name)")
    .option("--url <url>", "agent URL (default: the node's url in the manifest)");
}

/** `<state>` of `baton maintenance`: its choices are for completion; the action checks it. */
export function onOff(): Argument {
  const arg = new Argument("<state>", "on or off");
  arg.argChoices = ["on", "off"];
  return arg;
}

/** Whether `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
