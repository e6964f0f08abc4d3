/**
 * The shape of the code, checked on the real module graph:
 * (a) no import cycle anywhere in the repository (src/, main.ts, tests/, faults/, scripts/);
 * (b) under src/, imports only go down the layer order {@linkcode TIERS} (the same table is in
 *     docs/design.md, section 1), and src/ imports nothing outside src/;
 * (c) no file under src/ is longer than {@linkcode MAX_LINES} lines, except the files of
 *     {@linkcode TOO_LONG} (printed on every run).
 *
 * The graph is Deno's own (`deno info --json` on a root that imports every module): static,
 * dynamic and type-only imports, as the compiler resolves them, so an `import` line inside a
 * doc comment, an `@example` block or a string is not an edge.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * The layers of src/, lowest first. A unit is a folder under src/ or a file directly in it.
 * A module may import its own unit and any unit of a LOWER tier; nothing of its own tier's
 * other units, nothing above. Every unit under src/ must be listed here.
 */
const TIERS: readonly (readonly [string, readonly string[]])[] = [
  // data shapes and parsing, time: the manifest and its loader, the Clock/Timers ports
  ["base", ["manifest", "clock", "version.ts"]],
  // the pure decision core: step(state, event, now) → actions
  ["core", ["core"]],
  // OS primitives: processes, /proc, cgroups; app checks (http/tcp/exec); floating IPs
  ["os", ["supervisor", "checks", "vip"]],
  // durable state: the state file and the event log (reads /proc for the lock's owner); the
  // per-host log writer of the apps' output (checks its process through /proc)
  ["storage", ["store", "logs"]],
  // protocol and host drivers: peer messages, HMAC auth, client, node HTTP API and its
  // documents; the per-host guard; notifications; etcd as the coordinator
  ["protocol", ["peer", "guard", "notify", "coord"]],
  // what reads the protocol's documents: the witness, metrics, explain, the status text
  ["views", ["witness", "metrics", "explain", "status_text.ts"]],
  // the status page (reads metrics)
  ["page", ["page"]],
  // the runtime of one node: Agent (events in, actions out) and its start-up
  ["agent", ["agent"]],
  // entry points: the CLI, and the simulation (runs the real Agent over in-memory twins)
  ["runtime", ["cli", "sim"]],
  // the `baton` program: builds the command line from src/cli/ (main.ts runs it)
  ["program", ["cli.ts"]],
];

/** Longest file under src/, in lines. */
const MAX_LINES = 400;

/**
 * Files under src/ allowed above {@linkcode MAX_LINES} for now, each with why it was not split.
 * An entry that is no longer needed fails the test (remove it).
 */
const TOO_LONG: Readonly<Record<string, string>> = {};

/** Every .ts file under `dir` (recursively), as paths relative to the repository root. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string) => {
    for (const e of Deno.readDirSync(abs)) {
      const p = join(abs, e.name);
      if (e.isDirectory && e.name !== "node_modules" && !e.name.startsWith(".")) walk(p);
      else if (e.isFile && e.name.endsWith(".ts")) out.push(relative(ROOT, p));
    }
  };
  try {
    walk(join(ROOT, dir));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out.sort();
}

/** Module graph of `files` (repository-relative paths): file → the repository files it imports. */
function moduleGraph(files: string[]): Map<string, Set<string>> {
  const dir = Deno.makeTempDirSync({ prefix: "baton-layers-" });
  try {
    const root = join(dir, "root.ts");
    Deno.writeTextFileSync(
      root,
      files.map((f) => `import ${JSON.stringify(pathToFileURL(join(ROOT, f)).href)};\n`).join(""),
    );
    const r = new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    assert.equal(r.code, 0, `deno info failed: ${new TextDecoder().decode(r.stderr)}`);
    const info = JSON.parse(new TextDecoder().decode(r.stdout)) as {
      modules: {
        specifier: string;
        dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
      }[];
    };
    const local = (spec: string | undefined): string | null => {
      if (!spec?.startsWith("file:")) return null;
      const p = relative(ROOT, fileURLToPath(spec));
      return p.startsWith("..") || p.includes("node_modules") ? null : p;
    };
    const graph = new Map<string, Set<string>>();
    for (const m of info.modules) {
      const from = local(m.specifier);
      if (from === null) continue;
      const deps = new Set<string>();
      for (const d of m.dependencies ?? []) {
        for (const to of [local(d.code?.specifier), local(d.type?.specifier)]) {
          if (to !== null && to !== from) deps.add(to);
        }
      }
      graph.set(from, deps);
    }
    return graph;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Strongly connected components with more than one module (Tarjan): the import cycles. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) found.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

/** The unit of a file under src/: its folder, or its own name for a file directly in src/. */
function unitOf(file: string): string {
  return file.split("/")[1]!;
}

const tierOf = new Map<string, number>();
TIERS.forEach(([, units], i) => units.forEach((u) => tierOf.set(u, i)));

/** The layer rule, for one import of a file under src/: null if allowed, else why not. */
function layerViolation(from: string, to: string): string | null {
  if (!to.startsWith("src/")) return `${from} imports ${to}, outside src/`;
  const a = unitOf(from);
  const b = unitOf(to);
  if (a === b) return null;
  const ta = tierOf.get(a)!;
  const tb = tierOf.get(b)!;
  if (tb < ta) return null;
  const name = (t: number) => TIERS[t]![0];
  return `${from} (${a}, tier ${name(ta)}) imports ${to} (${b}, tier ${name(tb)}): ` +
    (tb === ta ? "same tier, another unit" : "upward");
}

const SRC = tsFiles("src");
const ALL = [
  ...(["main.ts"].filter((f) => {
    try {
      return Deno.statSync(join(ROOT, f)).isFile;
    } catch {
      return false;
    }
  })),
  ...SRC,
  ...tsFiles("tests"),
  ...tsFiles("faults"),
  ...tsFiles("scripts"),
];
const GRAPH = moduleGraph(ALL);

Deno.test("layers: the module graph covers every file under src/", () => {
  const missing = SRC.filter((f) => !GRAPH.has(f));
  assert.deepEqual(missing, [], "files deno info did not report");
});

Deno.test("layers: no import cycle anywhere in the repository", () => {
  const found = cycles(GRAPH);
  assert.deepEqual(
    found,
    [],
    `import cycles (each line one strongly connected set):\n${
      found.map((c) => "  " + c.join(" ↔ ")).join("\n")
    }`,
  );
});

Deno.test("layers: every unit under src/ has a tier", () => {
  const unknown = [...new Set(SRC.map(unitOf))].filter((u) => !tierOf.has(u)).sort();
  assert.deepEqual(unknown, [], "add these to TIERS in tests/layers_test.ts and docs/design.md");
});

Deno.test("layers: under src/, imports only go down the layer order", () => {
  const bad: string[] = [];
  for (const from of SRC) {
    if (!tierOf.has(unitOf(from))) continue; // reported by the test above
    for (const to of [...(GRAPH.get(from) ?? [])].sort()) {
      const why = layerViolation(from, to);
      if (why !== null) bad.push(why);
    }
  }
  assert.deepEqual(bad, [], `imports against the layer order:\n  ${bad.join("\n  ")}`);
});

Deno.test(`layers: no file under src/ is longer than ${MAX_LINES} lines`, () => {
  const lines = (f: string) => Deno.readTextFileSync(join(ROOT, f)).split("\n").length - 1;
  const long = SRC.map((f) => ({ f, n: lines(f) })).filter((x) => x.n > MAX_LINES);
  for (const [f, why] of Object.entries(TOO_LONG)) {
    const n = SRC.includes(f) ? lines(f) : 0;
    console.log(`  allowed over ${MAX_LINES} lines: ${f} (${n}): ${why}`);
  }
  const over = long.filter((x) => !(x.f in TOO_LONG)).map((x) => `${x.f} (${x.n} lines)`);
  assert.deepEqual(over, [], `split these files (or, if you truly cannot, list them in TOO_LONG)`);
  const stale = Object.keys(TOO_LONG).filter((f) => !long.some((x) => x.f === f));
  assert.deepEqual(stale, [], "these files are short enough now: remove them from TOO_LONG");
});
