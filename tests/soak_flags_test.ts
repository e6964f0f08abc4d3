import assert from "node:assert/strict";
import { taskFlags } from "../scripts/soak.ts";

// A soak round must run each suite with the flags of its own task: the first soak ran tests/
// without --unstable-net and failed every Deno.listenDatagram test (sd_notify) in every round.
Deno.test("soak runs each suite with the deno test flags of its task in deno.json", () => {
  const tests = taskFlags("tests");
  assert.ok(tests.includes("--unstable-net"), tests.join(" "));
  assert.ok(tests.includes("--allow-all"), tests.join(" "));
  assert.ok(taskFlags("faults").includes("--unstable-net"));
  assert.throws(() => taskFlags("nonesuch"), /no task for the suite nonesuch/);
});
