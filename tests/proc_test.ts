import assert from "node:assert/strict";
import {
  isSameProcess,
  parseProcStat,
  processGroupAlive,
  processGroupMembers,
  readProcStat,
} from "../src/supervisor/proc.ts";

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Starts `sh -c script` detached (own process group), stdout piped; returns its first line. */
async function startWithFirstLine(
  script: string,
): Promise<{ child: Deno.ChildProcess; line: string }> {
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", script],
    detached: true,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  await reader.cancel();
  return { child, line: text.split("\n")[0] ?? "" };
}

Deno.test("parseProcStat splits at the last ')' when the command name has spaces and parens", () => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
  fields[0] = "S"; // state
  fields[1] = "77"; // ppid
  fields[2] = "4242"; // pgid
  fields[22 - 3] = "987654"; // start time
  const stat = parseProcStat(`4242 (evil) (name) S 1) ${fields.join(" ")}\n`);
  assert.deepEqual(stat, { pid: 4242, state: "S", ppid: 77, pgid: 4242, startTime: 987654 });
});

Deno.test("parseProcStat returns null for text without the stat layout", () => {
  assert.equal(parseProcStat(""), null);
  assert.equal(parseProcStat("12 (x) S 1 2"), null);
  assert.equal(parseProcStat("garbage"), null);
});

Deno.test("readProcStat reads this process and returns null for a PID that does not exist", () => {
  const me = readProcStat(Deno.pid);
  assert.ok(me !== null);
  assert.equal(me.pid, Deno.pid);
  assert.ok(me.startTime > 0, `expected a positive start time, found ${me.startTime}`);
  assert.equal(me.state.length, 1);
  assert.equal(readProcStat(99_999_999), null);
  assert.equal(readProcStat(-1), null);
});

Deno.test("isSameProcess is true for this process and false for another start time", () => {
  const me = readProcStat(Deno.pid)!;
  assert.equal(isSameProcess(me.pid, me.startTime), true);
  assert.equal(isSameProcess(me.pid, me.startTime + 1), false);
  assert.equal(isSameProcess(99_999_999, me.startTime), false);
});

Deno.test("isSameProcess treats a zombie as dead", async () => {
  // The leader execs `sleep 30` and never reaps its background child, which turns zombie.
  const { child, line } = await startWithFirstLine("sleep 0.2 & echo $!; exec sleep 30");
  try {
    const zombie = Number(line);
    const first = readProcStat(zombie);
    assert.ok(first !== null, `expected the background child ${zombie} to exist`);
    await waitFor("the child to turn zombie", () => readProcStat(zombie)?.state === "Z");
    assert.equal(isSameProcess(zombie, first.startTime), false);
    assert.ok(readProcStat(zombie) !== null, "a zombie still has a /proc entry");
  } finally {
    Deno.kill(-child.pid, "SIGKILL");
    await child.status;
  }
});

Deno.test("processGroupAlive sees every member of a group and none once it is killed", async () => {
  const { child } = await startWithFirstLine("sleep 30 & echo started; sleep 30");
  try {
    assert.equal(readProcStat(child.pid)?.pgid, child.pid);
    await waitFor("two members", () => processGroupMembers(child.pid).length >= 2);
    assert.equal(processGroupAlive(child.pid), true);
    Deno.kill(-child.pid, "SIGKILL");
    await child.status;
    // The orphaned background sleep may linger as a zombie: it must not count.
    await waitFor("the group to die", () => !processGroupAlive(child.pid));
    assert.deepEqual(processGroupMembers(child.pid), []);
  } finally {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch { /* already gone */ }
  }
});
