import assert from "node:assert/strict";
import {
  EventLog,
  type EventRecord,
  parseEventLine,
  readEvents,
  RECENT_CAPACITY,
} from "../src/store/event_log.ts";

function record(i: number, overrides: Partial<EventRecord> = {}): EventRecord {
  return {
    time: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString(),
    node: "alpha",
    level: "info",
    app: i % 2 === 0 ? "web" : null,
    kind: "boot",
    message: `event number ${i}`,
    epoch: 1,
    ...overrides,
  };
}

async function withTempDir(body: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "baton_events_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("EventLog.append writes one JSON line per record that readEvents reads back", async () => {
  await withTempDir((dir) => {
    const log = new EventLog(`${dir}/sub`);
    const records = [record(1), record(2, { level: "error", message: 'quote " and\nnewline' })];
    for (const r of records) log.append(r);
    log.close();
    const text = Deno.readTextFileSync(`${dir}/sub/events.jsonl`);
    assert.equal(text, records.map((r) => JSON.stringify(r) + "\n").join(""));
    assert.deepEqual(readEvents(`${dir}/sub/events.jsonl`), records);
  });
});

Deno.test("EventLog.recent returns the last n records, oldest first, capped in memory", async () => {
  await withTempDir((dir) => {
    const log = new EventLog(dir);
    for (let i = 0; i < RECENT_CAPACITY + 10; i++) log.append(record(i));
    assert.deepEqual(log.recent(2), [record(RECENT_CAPACITY + 8), record(RECENT_CAPACITY + 9)]);
    assert.equal(log.recent(10_000).length, RECENT_CAPACITY);
    assert.deepEqual(log.recent(0), []);
    log.close();
  });
});

Deno.test("readEvents skips a malformed trailing line", async () => {
  await withTempDir((dir) => {
    const file = `${dir}/events.jsonl`;
    const full = JSON.stringify(record(1)) + "\n";
    const partial = JSON.stringify(record(2)).slice(0, 25);
    Deno.writeTextFileSync(file, full + partial);
    assert.deepEqual(readEvents(file), [record(1)]);
  });
});

Deno.test("readEvents returns no records for a missing file", () => {
  assert.deepEqual(readEvents("/nonexistent/baton/events.jsonl"), []);
});

Deno.test("EventLog reopened after a crash keeps the partial line apart and reloads recent", async () => {
  await withTempDir((dir) => {
    const file = `${dir}/events.jsonl`;
    Deno.writeTextFileSync(file, JSON.stringify(record(1)) + "\n" + '{"time":"2024-01-01T0');
    const log = new EventLog(dir);
    assert.deepEqual(log.recent(10), [record(1)]);
    log.append(record(2));
    log.close();
    assert.deepEqual(readEvents(file), [record(1), record(2)]);
  });
});

Deno.test("EventLog rotates to events.jsonl.1 before exceeding maxBytes and keeps one old file", async () => {
  const rec = (i: number) => record(i, { app: "web" }); // all lines the same length
  await withTempDir((dir) => {
    const lineBytes = JSON.stringify(rec(10)).length + 1;
    const log = new EventLog(dir, { maxBytes: lineBytes * 3 });
    for (let i = 10; i < 17; i++) log.append(rec(i)); // 7 lines of equal length
    log.close();
    // 3 + 3 rotated away, the first three dropped with the second rotation.
    assert.deepEqual(readEvents(`${dir}/events.jsonl`), [rec(16)]);
    assert.deepEqual(readEvents(`${dir}/events.jsonl.1`), [rec(13), rec(14), rec(15)]);
    assert.equal(Deno.statSync(`${dir}/events.jsonl.1`).size, lineBytes * 3);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["events.jsonl", "events.jsonl.1"]);
    assert.deepEqual(log.recent(3), [rec(14), rec(15), rec(16)]);
  });
});

Deno.test("EventLog with keep 2 shifts older files to events.jsonl.2", async () => {
  const rec = (i: number) => record(i, { app: "web" }); // all lines the same length
  await withTempDir((dir) => {
    const lineBytes = JSON.stringify(rec(10)).length + 1;
    const log = new EventLog(dir, { maxBytes: lineBytes, keep: 2 });
    for (let i = 10; i < 14; i++) log.append(rec(i));
    log.close();
    assert.deepEqual(readEvents(`${dir}/events.jsonl`), [rec(13)]);
    assert.deepEqual(readEvents(`${dir}/events.jsonl.1`), [rec(12)]);
    assert.deepEqual(readEvents(`${dir}/events.jsonl.2`), [rec(11)]);
    assert.equal([...Deno.readDirSync(dir)].length, 3);
  });
});

Deno.test("parseEventLine rejects lines that are not complete records", () => {
  assert.deepEqual(parseEventLine(JSON.stringify(record(1))), record(1));
  assert.equal(parseEventLine('{"time":"x"'), null);
  assert.equal(parseEventLine(JSON.stringify({ ...record(1), level: "debug" })), null);
  assert.equal(parseEventLine(JSON.stringify({ ...record(1), epoch: "1" })), null);
  assert.equal(parseEventLine("42"), null);
});
