/**
 * The command line: `baton init | validate | run | status | reload | switchover |
 * maintenance | clear | events | explain | completion | witness | version | logs`. Parsing is
 * commander's; each command resolves its inputs and calls one module that does the work.
 *
 * @module
 */
import { Argument, Command, Option, type OptionValues } from "@commander-js/extra-typings";
import { formatDiagnostic, loadManifestFile, resolveNodeName } from "./manifest/load.ts";
import type { Manifest } from "./manifest/types.ts";
import { generateSecret, loadSecret } from "./peer/secret.ts";
import { PeerClient, PeerError } from "./peer/client.ts";
import { VERSION } from "./version.ts";
import type { StatusDoc } from "./agent/status.ts";
import { formatStatus } from "./status_text.ts";
import { MANIFEST_HELP, manifestPath } from "./cli/manifest_path.ts";
import { addLogsCommand } from "./cli/logs_cmd.ts";

/** Thrown to end a command with a message and an exit code. */
export class CliExit extends Error {
  /** @param code process exit code */
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** Load and validate the manifest, or end with its diagnostics. */
async function loadOrExit(path: string, warn = true): Promise<Manifest> {
  const r = await loadManifestFile(path);
  if (warn) { for (const w of r.warnings) console.error(formatDiagnostic(w)); }
  if (!r.ok) {
    for (const e of r.errors) console.error(formatDiagnostic(e));
    throw new CliExit(1, `${path}: ${r.errors.length} error(s)`);
  }
  return r.manifest;
}

function nodeOrExit(manifest: Manifest, flag: string | undefined): string {
  const r = resolveNodeName(manifest, flag, Deno.env.get("BATON_NODE"), Deno.hostname());
  if (!r.ok) throw new CliExit(2, r.error);
  return r.node;
}

async function secretOrExit(manifest: Manifest): Promise<string> {
  const r = await loadSecret({
    env: Deno.env.get("BATON_SECRET"),
    file: manifest.cluster.secretFile,
  });
  if (!r.ok) throw new CliExit(2, r.error);
  if ("warning" in r && r.warning) console.error(`baton: warning: ${r.warning}`);
  return r.secret;
}

/** Common options of the commands that talk to a running agent. */
interface TargetOpts {
  manifest?: string;
  node?: string;
  url?: string;
}

async function target(opts: TargetOpts, needSecret: boolean) {
  // Warnings are for `validate` and `run`; a status read should print only the status.
  const manifest = await loadOrExit(manifestPath(opts.manifest), false);
  const node = nodeOrExit(manifest, opts.node);
  const url = opts.url ?? manifest.nodes[node]?.url ?? "";
  const secret = needSecret ? await secretOrExit(manifest) : "unused-for-reads-0000";
  const caCert = manifest.cluster.tls?.ca ? await Deno.readTextFile(manifest.cluster.tls.ca) : null;
  const client = new PeerClient({ node, secret, timeoutMs: 130_000, caCert });
  return { manifest, node, url, client };
}

/** The error of a failed exchange with an agent; "no answer" says which agent to start. */
function agentError(err: unknown, node: string): CliExit {
  if (!(err instanceof PeerError)) return new CliExit(1, String(err));
  const hint = err.httpStatus === 0
    ? `; is the agent of node "${node}" running ("baton run")?`
    : "";
  return new CliExit(1, err.message + hint);
}

async function post(
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

function withTarget<A extends unknown[], O extends OptionValues>(cmd: Command<A, O>) {
  return cmd
    .option("-m, --manifest <file>", MANIFEST_HELP)
    .option("-n, --node <name>", "node to talk to (default: $BATON_NODE or this host's name)")
    .option("--url <url>", "agent URL (default: the node's url in the manifest)");
}

/** Build the program. Exported for tests. */
export function buildProgram(): Command {
  const program = new Command()
    .name("baton")
    .description(
      "High-availability agent: supervises the apps of a YAML manifest, restarts a failed app " +
        "once, and moves every movable app to the standby host when it fails again.",
    )
    .version(VERSION, "-V, --version")
    .showHelpAfterError()
    .exitOverride();

  program.command("version").description("print the version")
    .option("--json", "print { baton, deno, v8, typescript } as JSON")
    .action((opts) => {
      console.log(
        opts.json
          ? JSON.stringify({ baton: VERSION, ...Deno.version })
          : `baton ${VERSION} (deno ${Deno.version.deno})`,
      );
    });

  program.command("init")
    .description(
      "write a commented one-node manifest named after this host (--cluster: a two-node " +
        "example) and a fresh shared secret",
    )
    .argument("[file]", "manifest to write", "baton.yaml")
    .option("-f, --force", "overwrite an existing manifest")
    .option("--cluster", "write a two-node cluster with a witness (alpha, beta on loopback)")
    .action(async (file, opts) => {
      const { EXAMPLE_MANIFEST, nodeNameForHost, singleNodeManifest } = await import(
        "./manifest/example.ts"
      );
      if (!opts.force && await exists(file)) {
        throw new CliExit(1, `${file} exists; use --force to overwrite it`);
      }
      const node = nodeNameForHost(Deno.hostname());
      await Deno.writeTextFile(file, opts.cluster ? EXAMPLE_MANIFEST : singleNodeManifest(node));
      console.log(
        opts.cluster
          ? `wrote ${file}: nodes alpha and beta, a witness on 127.0.0.1:7400`
          : `wrote ${file}: one node, "${node}" (this host); --cluster writes a two-node example`,
      );
      const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : ".";
      const secretFile = `${dir}/baton.secret`;
      if (!await exists(secretFile)) {
        await Deno.writeTextFile(secretFile, generateSecret() + "\n", { mode: 0o600 });
        console.log(`wrote ${secretFile} (mode 0600): copy it to every node`);
      }
      console.log(`next: baton validate ${file}`);
    });

  program.command("validate")
    .description("check a manifest; prints FILE:LINE:COL: message for every problem")
    .argument("[file]", MANIFEST_HELP)
    .option("--offline", "do not ask running agents which manifest they run")
    .option("--json", "print { file, ok, errors, warnings, summary, failoverTimes } as JSON")
    .action(async (file, opts) => {
      const path = manifestPath(file);
      const r = await loadManifestFile(path);
      const { failoverTimes, formatFailoverTimes } = await import("./manifest/failover_times.ts");
      if (opts.json) {
        const drift = r.ok && !opts.offline ? await manifestDrift(r.manifest) : [];
        const m = r.ok ? r.manifest : null;
        console.log(JSON.stringify(
          {
            file: path,
            ok: r.ok,
            errors: r.ok ? [] : r.errors,
            warnings: [...r.warnings, ...drift.map((message) => ({ file: path, message }))],
            summary: m && {
              cluster: m.cluster.name,
              nodes: Object.keys(m.nodes),
              apps: Object.keys(m.apps),
              hash: m.hash,
            },
            failoverTimes: m && failoverTimes(m),
          },
          null,
          2,
        ));
        if (!r.ok) throw new CliExit(1, `${path}: invalid (${r.errors.length} error(s))`);
        return;
      }
      for (const d of [...(r.ok ? [] : r.errors), ...r.warnings]) console.log(formatDiagnostic(d));
      if (!r.ok) throw new CliExit(1, `${path}: invalid (${r.errors.length} error(s))`);
      const m = r.manifest;
      const drift = opts.offline ? [] : await manifestDrift(m);
      for (const line of drift) console.log(`${path}:1:1: warning: ${line}`);
      const warnings = r.warnings.length + drift.length;
      console.log(
        `${path}: ok — cluster ${m.cluster.name}, ${Object.keys(m.nodes).length} node(s), ` +
          `${Object.keys(m.apps).length} app(s), hash ${m.hash.slice(0, 12)}` +
          (warnings ? `, ${warnings} warning(s)` : ""),
      );
      for (const line of formatFailoverTimes(failoverTimes(m))) console.log(line);
    });

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
      const secret = await secretOrExit(manifest);
      // The apps inherit the agent's environment: never the secret.
      Deno.env.delete("BATON_SECRET");
      const stateDir = opts.stateDir ?? Deno.env.get("BATON_STATE_DIR") ??
        `/var/lib/baton/${node}`;
      const { runAgent } = await import("./agent/run_agent.ts");
      const code = await runAgent({
        manifest,
        manifestPath: path,
        node,
        stateDir,
        mode: opts.mode,
        secret,
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
    program.command("clear").description("clear a failed node (back to standby) and its counters"),
  )
    .action(async (opts) => {
      const r = await post(opts, "/v1/clear", {});
      console.log(`cleared: node is ${r.role}`);
    });

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
      const { apiSource, fileSource, runEvents } = await import("./cli/events_cmd.ts");
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
      const { explain, formatExplanation } = await import("./explain/explain.ts");
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

  program.command("completion")
    .description("print a shell completion script (bash, zsh or fish)")
    .addArgument(new Argument("<shell>", "bash, zsh or fish").choices(["bash", "zsh", "fish"]))
    .action(async (shell) => {
      const { completionScript } = await import("./cli/completion.ts");
      console.log(completionScript(program, shell as "bash" | "zsh" | "fish"));
    });

  program.command("witness")
    .description("serve a baton witness: the third vote that breaks network partitions")
    .option("-l, --listen <host:port>", "address to listen on", "0.0.0.0:7400")
    .option("-m, --manifest <file>", `for the secret: ${MANIFEST_HELP}`)
    .action(async (opts) => {
      const manifest = await loadOrExit(manifestPath(opts.manifest));
      const secret = await secretOrExit(manifest);
      const { runWitness } = await import("./witness/run_witness.ts");
      const w = manifest.cluster.witness;
      const tls = manifest.cluster.tls;
      const https = w !== null && new URL(w.url).protocol === "https:";
      if (https && !tls) {
        throw new CliExit(
          2,
          `cluster.witness is ${w.url}: expected cluster.tls { cert, key } to serve https, ` +
            "found no cluster.tls",
        );
      }
      await runWitness(
        opts.listen,
        secret,
        manifest.cluster.heartbeat.deadAfterMs,
        w ? new URL(w.url).host : null,
        https && tls
          ? { cert: await Deno.readTextFile(tls.cert), key: await Deno.readTextFile(tls.key) }
          : null,
      );
    });

  addLogsCommand(program); // s3proc: baton logs APP [-f] [-n N]
  return program;
}

/**
 * Ask every node that answers which manifest it runs (a read of its open status endpoint,
 * bounded to 700 ms each); one warning per node whose manifest differs from `m`.
 */
async function manifestDrift(m: Manifest): Promise<string[]> {
  const caCert = m.cluster.tls?.ca
    ? await Deno.readTextFile(m.cluster.tls.ca).catch(() => null)
    : null;
  const client = new PeerClient({
    node: "validate",
    secret: "unused-for-reads-0000",
    timeoutMs: 700,
    caCert,
  });
  try {
    const found = await Promise.all(
      Object.values(m.nodes).map(async (n) => {
        try {
          const doc = await client.get<{ manifestHash?: string }>(n.url, "/v1/status");
          return doc.manifestHash && doc.manifestHash !== m.hash
            ? `node ${n.name} runs another manifest (${doc.manifestHash.slice(0, 12)}, this file ` +
              `${m.hash.slice(0, 12)}): run "baton reload" there once the file is in place`
            : null;
        } catch {
          return null; // not running, or not reachable from here: nothing to compare
        }
      }),
    );
    return found.filter((x): x is string => x !== null);
  } finally {
    client.close();
  }
}

/** `<state>` of `baton maintenance`: its choices are for completion; the action checks it. */
function onOff(): Argument {
  const arg = new Argument("<state>", "on or off");
  arg.argChoices = ["on", "off"];
  return arg;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Run the CLI and return the exit code. */
export async function main(args: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CliExit) {
      console.error(`baton: ${err.message}`);
      return err.code;
    }
    const e = err as { code?: string; exitCode?: number };
    if (typeof e.code === "string" && e.code.startsWith("commander.")) {
      return e.code === "commander.helpDisplayed" || e.code === "commander.version" ||
          e.code === "commander.help"
        ? 0
        : (e.exitCode ?? 2);
    }
    console.error(`baton: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
