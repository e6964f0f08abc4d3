/** One contract for the event log on disk (`EventLog`) and its twin (`MemoryEventLog`). */
import assert from "node:assert/strict";
import { EventLog, type EventRecord, type EventSink } from "../src/store/event_log.ts";
import { MemoryEventLog, newMemoryDisk } from "../src/store/memory_store.ts";

interface Place {
  open(): EventSink;
  cleanup(): Promise<void>;
}

const places: Record<string, () => Promise<Place>> = {
  disk: async () => {
    const dir = await Deno.makeTempDir({ prefix: "baton-log-contract-" });
    const opened: EventLog[] = [];
    return {
      open: () => {
        const log = new EventLog(dir);
        opened.push(log);
        return log;
      },
      cleanup: async () => {
        for (const l of opened) l.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
  memory: () => {
    const disk = newMemoryDisk();
    return Promise.resolve({ open: () => new MemoryEventLog(disk), cleanup: async () => {} });
  },
};

function rec(i: number): EventRecord {
  return {
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    node: "alpha",
    level: "info",
    app: i % 2 === 0 ? "web" : null,
    kind: "boot",
    message: `record ${i}`,
    epoch: 1,
  };
}

for (const [kind, make] of Object.entries(places)) {
  Deno.test(`event log (${kind}): recent(n) gives the last n records, oldest first`, async () => {
    const p = await make();
    const log = p.open();
    for (let i = 0; i < 5; i++) log.append(rec(i));
    assert.deepEqual(log.recent(2), [rec(3), rec(4)]);
    assert.deepEqual(log.recent(0), []);
    assert.equal(log.recent(100).length, 5);
    await p.cleanup();
  });

  Deno.test(`event log (${kind}): a reopened log still has the records from before`, async () => {
    const p = await make();
    const log = p.open();
    log.append(rec(1));
    log.append(rec(2));
    if (log instanceof EventLog) log.close();
    assert.deepEqual(p.open().recent(10), [rec(1), rec(2)]);
    await p.cleanup();
  });
}
