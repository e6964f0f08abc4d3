/**
 * Manifests built to break a loader: alias bombs, a merge key that includes itself, nesting
 * thousands of levels deep (flow, block and compact sequences), huge numbers, giant strings
 * and a giant file. Each comes with the line where its error must be reported (1-based);
 * shared by the loader, `baton validate` and agent reload tests.
 */

/** A valid one-node manifest body; hostile cases append to it (its 4 lines come first). */
export function validBase(url = "http://127.0.0.1:7401"): string {
  return `nodes:\n  alpha: { url: "${url}" }\napps:\n  web: { command: [sleep, "100"] }\n`;
}

/** One hostile manifest: its text, the line of its error, and what the message says. */
export interface HostileCase {
  name: string;
  text: string;
  line: number;
  message: RegExp;
}

/** Every hostile case, appended to `base` (default {@linkcode validBase}). */
export function hostileManifests(base = validBase()): HostileCase[] {
  const baseLines = base.split("\n").length - 1;
  const next = baseLines + 1;
  const levels = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
  let bomb = "x-a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (let i = 1; i < levels.length; i++) {
    const prev = levels[i - 1];
    bomb += `x-${levels[i]}: &${levels[i]} [${Array(10).fill(`*${prev}`).join(", ")}]\n`;
  }
  let indent = "";
  let block = "x-block:\n";
  for (let i = 0; i < 2000; i++) {
    indent += " ";
    block += `${indent}k:\n`;
  }
  return [
    {
      name: "alias bomb (10^9 expansions)",
      text: base + bomb,
      line: next + 1,
      message: /aliases expand too far/,
    },
    {
      name: "merge key that includes itself",
      text: base + "x-loop: &loop { <<: *loop }\n",
      line: next,
      message: /aliases expand too far/,
    },
    {
      name: "flow nesting 100,000 deep",
      text: base + "x-deep: " + "[".repeat(100_000) + "]".repeat(100_000) + "\n",
      line: next,
      message: /nesting deeper than/,
    },
    {
      name: "flow mapping nesting 20,000 deep",
      text: base + "x-deep: " + "{a: ".repeat(20_000) + "1" + "}".repeat(20_000) + "\n",
      line: next,
      message: /nesting deeper than/,
    },
    {
      name: "block nesting 2,000 deep",
      text: base + block + indent + " 1\n",
      line: next + 513,
      message: /nesting deeper than/,
    },
    {
      name: "compact sequence 100,000 deep",
      text: base + "x-deep:\n" + "- ".repeat(100_000) + "x\n",
      line: next + 1,
      message: /nesting deeper than/,
    },
    {
      name: "nesting 100 deep (under the scan, over the tree limit)",
      text: base + "x-deep: " + "[".repeat(100) + "]".repeat(100) + "\n",
      line: next,
      message: /nesting deeper than 64/,
    },
    {
      name: "huge number as a duration",
      text: base + "cluster:\n  heartbeat: { interval: 1e400 }\n",
      line: next + 1,
      message: /duration/,
    },
    {
      name: "huge integer as a priority",
      text: base.replace("{ url:", "{ priority: 99999999999999999999999999999999999999, url:"),
      line: base.slice(0, base.indexOf("{ url:")).split("\n").length,
      message: /priority|integer|number/,
    },
    {
      name: "huge duration string",
      text: base + "cluster:\n  heartbeat: { interval: 99999999999999999999999999999999ms }\n",
      line: next + 1,
      message: /too large/,
    },
    {
      name: "giant string value (2 MiB)",
      text: base + `x-big: "${"z".repeat(2 * 1024 * 1024)}"\n`,
      line: next,
      message: /string of \d+ characters/,
    },
    {
      name: "giant file (20 MiB)",
      text: base + `# ${"z".repeat(20 * 1024 * 1024)}\n`,
      line: 1,
      message: /manifest of \d+ characters/,
    },
  ];
}
