/**
 * `baton init` and `baton validate`: write a manifest, check one (and ask running agents
 * which manifest they run).
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { formatDiagnostic, loadManifestFile } from "../manifest/load.ts";
import type { Manifest } from "../manifest/types.ts";
import { checkSecretFile, generateSecret } from "../peer/secret.ts";
import { PeerClient } from "../peer/client.ts";
import { MANIFEST_HELP, manifestPath } from "./manifest_path.ts";
import { CliExit, exists } from "./common.ts";

/** Adds `init` and `validate` to `program`. */
export function addManifestCommands(program: Command): void {
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
        "../manifest/example.ts"
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
      const { failoverTimes, formatFailoverTimes } = await import("../manifest/failover_times.ts");
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
      // The secret file as `baton run` will find it: missing is a warning (written at install),
      // unsafe (readable by others, another owner) an error, as `run` refuses it.
      const secret = await secretFileNote(path, m);
      if (secret !== null) console.log(secret.line);
      if (secret?.error) throw new CliExit(1, `${path}: invalid (1 error(s))`);
      const warnings = r.warnings.length + drift.length + (secret ? 1 : 0);
      console.log(
        `${path}: ok — cluster ${m.cluster.name}, ${Object.keys(m.nodes).length} node(s), ` +
          `${Object.keys(m.apps).length} app(s), hash ${m.hash.slice(0, 12)}` +
          (warnings ? `, ${warnings} warning(s)` : ""),
      );
      for (const line of formatFailoverTimes(failoverTimes(m))) console.log(line);
    });
}

/**
 * What `baton run` will say of `cluster.secretFile` (unless BATON_SECRET or a systemd
 * credential replaces it), as a located diagnostic line: null when the file is fine.
 */
async function secretFileNote(
  path: string,
  m: Manifest,
): Promise<{ line: string; error: boolean } | null> {
  const file = m.cluster.secretFile;
  if (file === null || Deno.env.get("BATON_SECRET") || Deno.env.get("CREDENTIALS_DIRECTORY")) {
    return null;
  }
  const text = await Deno.readTextFile(path).catch(() => "");
  const lines = text.split("\n");
  const row = lines.findIndex((l) => /^\s*secretFile\s*:/.test(l));
  const at = row < 0 ? "1:1" : `${row + 1}:${(lines[row]!.search(/\S/) ?? 0) + 1}`;
  const exists = await Deno.stat(file).then(() => true, () => false);
  if (!exists) {
    return {
      line: `${path}:${at}: warning: secret file ${file} does not exist yet: "baton run" ` +
        `refuses to start without it (create it with "baton init", or 32 random bytes, mode 0600)`,
      error: false,
    };
  }
  const problem = await checkSecretFile(file);
  return problem === null ? null : { line: `${path}:${at}: error: ${problem}`, error: true };
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
          const doc = await client.get<{ manifestHash?: string; node?: string; cluster?: string }>(
            n.url,
            "/v1/status",
          );
          if (doc.node !== n.name || doc.cluster !== m.cluster.name) {
            // Someone else answers there (another cluster's agent, a one-node test agent).
            return `${n.url} (node ${n.name}'s URL) is answered by node ${doc.node ?? "?"} of ` +
              `cluster ${doc.cluster ?? "?"}, not by ${n.name} of ${m.cluster.name}`;
          }
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
