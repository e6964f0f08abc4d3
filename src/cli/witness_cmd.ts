/**
 * `baton witness`: serve a baton witness.
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { MANIFEST_HELP, manifestPath } from "./manifest_path.ts";
import { CliExit, loadOrExit, secretOrExit } from "./common.ts";

/** Adds `witness` to `program`. */
export function addWitnessCommand(program: Command): void {
  program.command("witness")
    .description("serve a baton witness: the third vote that breaks network partitions")
    .option("-l, --listen <host:port>", "address to listen on", "0.0.0.0:7400")
    .option("-m, --manifest <file>", `for the secret: ${MANIFEST_HELP}`)
    .action(async (opts) => {
      const manifest = await loadOrExit(manifestPath(opts.manifest));
      const { secret } = await secretOrExit(manifest, true);
      const { runWitness } = await import("../witness/run_witness.ts");
      const { trustedAddresses } = await import("../peer/conn_guard.ts");
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
        // The nodes are never refused by the witness's connection cap (conn_guard.ts).
        trustedAddresses(Object.values(manifest.nodes).map((n) => n.url)),
      );
    });
}
