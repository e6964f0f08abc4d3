import assert from "node:assert/strict";
import { type CheckReport, CheckScheduler } from "../src/checks/check_scheduler.ts";
import type { CheckResult, InterfaceCheckSpec } from "../src/checks/run_check.ts";
import type { CheckSpec } from "../src/manifest/types.ts";

function tcpSpec(extra: Partial<{ intervalMs: number; initialDelayMs: number }> = {}): CheckSpec {
  return {
    type: "tcp",
    host: "127.0.0.1",
    port: 1,
    intervalMs: 1,
    timeoutMs: 1000,
    failures: 1,
    initialDelayMs: 0,
    ...extra,
  };
}

/** A fake `run` whose calls each wait until the test answers them. */
class FakeRun {
  pending: Array<(r: CheckResult) => void> = [];
  calls = 0;
  inFlight = 0;
  maxInFlight = 0;
  run = (_spec: InterfaceCheckSpec): Promise<CheckResult> => {
    this.calls++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise((resolve) => {
      this.pending.push((r) => {
        this.inFlight--;
        resolve(r);
      });
    });
  };
  /** Answers the oldest pending call. */
  answer(r: CheckResult): void {
    const next = this.pending.shift();
    if (next === undefined) throw new Error("expected a pending check call, found none");
    next(r);
  }
}

async function waitFor(what: string, cond: () => boolean, boundMs = 5000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`expected ${what} within ${boundMs}ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("CheckScheduler delivers results tagged with the app and the pid they were taken for", async () => {
  const fake = new FakeRun();
  const results: CheckReport[] = [];
  const scheduler = new CheckScheduler((r) => results.push(r), { run: fake.run });
  try {
    scheduler.watch({ app: "web", pid: 42, spec: tcpSpec() });
    await waitFor("a first call", () => fake.pending.length === 1);
    fake.answer({ ok: true, detail: "fine" });
    await waitFor("a second call", () => fake.pending.length === 1 && fake.calls === 2);
    fake.answer({ ok: false, detail: "broken" });
    await waitFor("two results", () => results.length === 2);
    assert.deepEqual(results, [
      { app: "web", pid: 42, ok: true, detail: "fine" },
      { app: "web", pid: 42, ok: false, detail: "broken" },
    ]);
  } finally {
    scheduler.stopAll();
  }
});

Deno.test("CheckScheduler never runs two checks of one app at once, even with interval 0", async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  let results = 0;
  const run = async (): Promise<CheckResult> => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await sleep(5);
    inFlight--;
    return { ok: true, detail: "slow" };
  };
  const scheduler = new CheckScheduler(() => results++, { run });
  try {
    scheduler.watch({ app: "web", pid: 1, spec: tcpSpec({ intervalMs: 0 }) });
    await waitFor("five results", () => results >= 5);
    assert.equal(maxInFlight, 1);
  } finally {
    scheduler.stopAll();
  }
});

Deno.test("CheckScheduler.unwatch drops the result of a check still in flight", async () => {
  const fake = new FakeRun();
  const results: CheckReport[] = [];
  const scheduler = new CheckScheduler((r) => results.push(r), { run: fake.run });
  scheduler.watch({ app: "web", pid: 7, spec: tcpSpec() });
  await waitFor("a call in flight", () => fake.pending.length === 1);
  scheduler.unwatch("web");
  fake.answer({ ok: false, detail: "late" });
  await sleep(50);
  assert.deepEqual(results, []);
  assert.equal(fake.calls, 1, "expected no further calls after unwatch");
  assert.deepEqual(scheduler.watched(), []);
});

Deno.test("CheckScheduler.watch replaces the old pid and waits for its in-flight check", async () => {
  const fake = new FakeRun();
  const results: CheckReport[] = [];
  const scheduler = new CheckScheduler((r) => results.push(r), { run: fake.run });
  try {
    scheduler.watch({ app: "web", pid: 1, spec: tcpSpec() });
    await waitFor("the old check in flight", () => fake.pending.length === 1);
    scheduler.watch({ app: "web", pid: 2, spec: tcpSpec() });
    await sleep(30);
    assert.equal(fake.calls, 1, "expected the new watch to wait for the old check");
    fake.answer({ ok: false, detail: "old process" });
    await waitFor("the new check in flight", () => fake.pending.length === 1);
    fake.answer({ ok: true, detail: "new process" });
    await waitFor("a result", () => results.length >= 1);
    assert.deepEqual(results[0], { app: "web", pid: 2, ok: true, detail: "new process" });
    assert.equal(fake.maxInFlight, 1);
  } finally {
    scheduler.stopAll();
  }
});

Deno.test("CheckScheduler ignores process-type specs and they stop earlier checks", async () => {
  const fake = new FakeRun();
  const scheduler = new CheckScheduler(() => {}, { run: fake.run });
  scheduler.watch({ app: "db", pid: 3, spec: { type: "process" } });
  await sleep(20);
  assert.equal(fake.calls, 0);
  assert.deepEqual(scheduler.watched(), []);
  scheduler.watch({ app: "db", pid: 3, spec: tcpSpec({ initialDelayMs: 60_000 }) });
  assert.deepEqual(scheduler.watched(), ["db"]);
  scheduler.watch({ app: "db", pid: 3, spec: { type: "process" } });
  assert.deepEqual(scheduler.watched(), []);
  // The test's op sanitizer fails if the 60s timer was left pending.
});

Deno.test("CheckScheduler waits initialDelayMs before the first check", async () => {
  const fake = new FakeRun();
  const scheduler = new CheckScheduler(() => {}, { run: fake.run });
  scheduler.watch({ app: "slow", pid: 5, spec: tcpSpec({ initialDelayMs: 60_000 }) });
  scheduler.watch({ app: "fast", pid: 6, spec: tcpSpec({ initialDelayMs: 0 }) });
  await waitFor("the immediate check of fast", () => fake.calls === 1);
  await sleep(30);
  assert.equal(fake.calls, 1, "expected slow not to be checked before its initial delay");
  scheduler.stopAll();
  fake.answer({ ok: true, detail: "x" });
});

Deno.test("CheckScheduler turns a throwing run into a failed result and keeps checking", async () => {
  let calls = 0;
  const results: CheckReport[] = [];
  const run = (): Promise<CheckResult> => {
    calls++;
    if (calls === 1) throw new Error("boom");
    return Promise.resolve({ ok: true, detail: "fine" });
  };
  const scheduler = new CheckScheduler((r) => results.push(r), { run });
  try {
    scheduler.watch({ app: "web", pid: 9, spec: tcpSpec() });
    await waitFor("two results", () => results.length >= 2);
    assert.equal(results[0]?.ok, false);
    assert.match(results[0]?.detail ?? "", /boom/);
    assert.deepEqual(results[1], { app: "web", pid: 9, ok: true, detail: "fine" });
  } finally {
    scheduler.stopAll();
  }
});

Deno.test("CheckScheduler lets onResult unwatch the app without another check running", async () => {
  const fake = new FakeRun();
  const scheduler = new CheckScheduler((r) => scheduler.unwatch(r.app), { run: fake.run });
  scheduler.watch({ app: "web", pid: 1, spec: tcpSpec({ intervalMs: 0 }) });
  await waitFor("a call", () => fake.pending.length === 1);
  fake.answer({ ok: false, detail: "down" });
  await sleep(30);
  assert.equal(fake.calls, 1);
});

Deno.test("CheckScheduler runs the real checks by default", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const results: CheckReport[] = [];
  const scheduler = new CheckScheduler((r) => results.push(r));
  try {
    const spec = { ...tcpSpec({ intervalMs: 60_000 }), port: listener.addr.port } as CheckSpec;
    scheduler.watch({ app: "web", pid: 11, spec });
    await waitFor("a result", () => results.length === 1);
    assert.equal(results[0]?.ok, true, results[0]?.detail);
  } finally {
    scheduler.stopAll();
    listener.close();
  }
});

/** Timers the test fires by hand: every `set` is recorded with the clock time and delay. */
class FakeTimers {
  t = 0;
  pending: { fn: () => void; at: number; delay: number; id: number }[] = [];
  delays: { at: number; delay: number }[] = [];
  #next = 1;
  now = () => this.t;
  set = (fn: () => void, ms: number) => {
    const id = this.#next++;
    this.pending.push({ fn, at: this.t, delay: ms, id });
    this.delays.push({ at: this.t, delay: ms });
    return id;
  };
  clear = (handle: unknown) => {
    this.pending = this.pending.filter((p) => p.id !== handle);
  };
  /** Move the clock to when the oldest timer is due and fire it. */
  fire(): void {
    const p = this.pending.shift();
    if (p === undefined) throw new Error("expected a pending timer, found none");
    this.t = Math.max(this.t, p.at + p.delay);
    p.fn();
  }
}

Deno.test("CheckScheduler starts checks interval apart from start to start, or right after a slow one", async () => {
  const fake = new FakeRun();
  const timers = new FakeTimers();
  const results: CheckReport[] = [];
  const scheduler = new CheckScheduler((r) => results.push(r), { run: fake.run, timers });
  try {
    scheduler.watch({
      app: "web",
      pid: 1,
      spec: tcpSpec({ intervalMs: 100, initialDelayMs: 500 }),
    });
    assert.deepEqual(timers.delays, [{ at: 0, delay: 500 }]);
    timers.fire(); // t = 500: the first check starts
    await waitFor("the first call", () => fake.pending.length === 1);
    timers.t = 530; // it took 30 ms
    fake.answer({ ok: true, detail: "fine" });
    await waitFor("the first result", () => results.length === 1);
    // Due 100 ms after it started (t = 600), not 100 ms after it ended.
    assert.deepEqual(timers.delays.at(-1), { at: 530, delay: 70 });
    timers.fire(); // t = 600
    await waitFor("the second call", () => fake.pending.length === 1);
    timers.t = 850; // a hung app: the check took 250 ms, longer than the interval
    fake.answer({ ok: false, detail: "timed out" });
    await waitFor("the second result", () => results.length === 2);
    // Overdue: the next check starts at once, and never while the previous one was in flight.
    assert.deepEqual(timers.delays.at(-1), { at: 850, delay: 0 });
    assert.equal(fake.maxInFlight, 1);
  } finally {
    scheduler.stopAll();
  }
});
