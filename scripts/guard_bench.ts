/**
 * Guard benchmark: the guard's memory (RSS idle and after renewals) and how late it kills after
 * its lease ran out (the victim's death as seen by its waiting parent, minus the deadline).
 * `deno run -A scripts/guard_bench.ts [rounds]`; figures for docs/guard.md.
 *
 * @module
 */
import { GuardProcess, uptimeClock } from "../src/guard/guard.ts";
import { readProcStat } from "../src/supervisor/proc.ts";

const rounds = Number(Deno.args[0] ?? 40);
const dir = await Deno.makeTempDir({ prefix: "baton_guard_bench_" });
const guard = new GuardProcess(`${dir}/guard`, () => {});
guard.open();
const toUptime = uptimeClock();
const pid = guard.status().pid!;
const ps = new Deno.Command("ps", { args: ["-o", "cls=,rtprio=", "-p", String(pid)] }).outputSync();
console.log(`guard scheduling (class, rt priority): ${new TextDecoder().decode(ps.stdout).trim()}`);
const rss = () => Number(Deno.readTextFileSync(`/proc/${pid}/status`).match(/VmRSS:\s+(\d+)/)![1]);
const idle = rss();
for (let i = 0; i < 2000; i++) {
  guard.arm(toUptime(performance.now() + 10_000 + i));
  if (i % 100 === 0) await new Promise((r) => setTimeout(r, 1));
}
guard.disarm();
await new Promise((r) => setTimeout(r, 100));
const renewed = rss();
const late: number[] = [];
for (let i = 0; i < rounds; i++) {
  const victim = new Deno.Command("sleep", { args: ["30"], detached: true }).spawn();
  guard.setTargets([`pg ${victim.pid} ${readProcStat(victim.pid)!.startTime}`]);
  const deadline = performance.now() + 150;
  guard.arm(toUptime(deadline));
  await victim.status;
  late.push(performance.now() - deadline);
  guard.disarm();
}
guard.close();
Deno.kill(pid, "SIGKILL");
await Deno.remove(dir, { recursive: true });
late.sort((a, b) => a - b);
const q = (p: number) => late[Math.min(late.length - 1, Math.floor(p * late.length))]!.toFixed(1);
console.log(
  `guard RSS: ${idle} KiB idle, ${renewed} KiB after 2000 renewals\n` +
    `kill after expiry (${rounds} rounds, ms late): min ${q(0)}, median ${q(0.5)}, ` +
    `p90 ${q(0.9)}, max ${late[late.length - 1]!.toFixed(1)}`,
);
