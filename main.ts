/**
 * baton — a single-binary high-availability agent. Entry point of `deno run` and of the
 * `deno compile`d executable.
 *
 * @module
 */
import { main } from "./src/cli.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
