/**
 * Run `baton …` as a real process (through `batonCommand`, the flags of the compiled binary)
 * with a clean environment: no BATON_* variable of the test's own environment, and the
 * installed-manifest fallback pointed at a file that does not exist unless a test says so.
 */
import { batonCommand } from "../../scripts/local_cluster.ts";

/** What one run printed. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run `baton ...args` in `cwd` with `env` added to a BATON_*-free environment, inside the
 * network namespace `netns` when one is given (`ip netns exec`).
 */
export async function runBaton(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; netns?: string | null } = {},
): Promise<CliRun> {
  const env = Deno.env.toObject();
  for (const k of Object.keys(env)) if (k.startsWith("BATON_")) delete env[k];
  env.BATON_SYSTEM_MANIFEST = "/nonexistent/baton/baton.yaml";
  Object.assign(env, opts.env ?? {});
  const cmd = batonCommand(...args);
  const [program, ...rest] = opts.netns ? ["ip", "netns", "exec", opts.netns, ...cmd] : cmd;
  const out = await new Deno.Command(program!, {
    args: rest,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
