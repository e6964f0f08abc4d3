/**
 * The command line: `baton init | validate | run | status | reload | switchover |
 * maintenance | clear | fence-ok | events | explain | completion | witness | version | logs`. Parsing is
 * commander's; each command resolves its inputs and calls one module that does the work.
 *
 * Each command group lives in `src/cli/` (`manifest_cmds.ts`, `agent_cmds.ts`,
 * `inspect_cmds.ts`, `witness_cmd.ts`; shared helpers in `common.ts`).
 *
 * @module
 */
import { Argument, Command } from "@commander-js/extra-typings";
import { VERSION } from "./version.ts";
import { CliExit } from "./cli/common.ts";
import { addManifestCommands } from "./cli/manifest_cmds.ts";
import { addAgentCommands } from "./cli/agent_cmds.ts";
import { addInspectCommands } from "./cli/inspect_cmds.ts";
import { addWitnessCommand } from "./cli/witness_cmd.ts";
import { addLogsCommand } from "./cli/logs_cmd.ts";

export { CliExit } from "./cli/common.ts";

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

  addManifestCommands(program);
  addAgentCommands(program);
  addInspectCommands(program);

  program.command("completion")
    .description("print a shell completion script (bash, zsh or fish)")
    .addArgument(new Argument("<shell>", "bash, zsh or fish").choices(["bash", "zsh", "fish"]))
    .action(async (shell) => {
      const { completionScript } = await import("./cli/completion.ts");
      console.log(completionScript(program, shell as "bash" | "zsh" | "fish"));
    });

  addWitnessCommand(program);

  addLogsCommand(program); // s3proc: baton logs APP [-f] [-n N]
  return program;
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
