/**
 * A headless Chromium driven over the DevTools protocol (a WebSocket, no client library):
 * enough to load a page, read the DOM with `evaluate`, and take a screenshot. The browser is
 * Debian's `chromium-headless-shell` (or `chromium --headless`), installed by `.ci/run`.
 */

/** The first browser binary found, or null. */
export function findChromium(): string | null {
  for (
    const p of [
      // The real binaries first: Debian's /usr/bin entries are shell wrappers that run the
      // browser as their child (no exec), so killing the wrapper would orphan the browser.
      "/usr/lib/chromium/chromium-headless-shell",
      "/usr/bin/chromium-headless-shell",
      "/usr/lib/chromium/chromium",
      "/usr/bin/chromium",
    ]
  ) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* next */ }
  }
  return null;
}

/** Every live descendant of `root` (from the parent PIDs in /proc/<pid>/stat). */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      parent.set(Number(e.name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch { /* exited */ }
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const p = todo.pop()!;
    for (const [pid, ppid] of parent) {
      if (ppid === p) {
        out.push(pid);
        todo.push(pid);
      }
    }
  }
  return out;
}

/** One page of a headless browser. */
export class Browser {
  #child: Deno.ChildProcess;
  #ws: WebSocket;
  #id = 0;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #session = "";
  #dir: string;

  private constructor(child: Deno.ChildProcess, ws: WebSocket, dir: string) {
    this.#child = child;
    this.#ws = ws;
    this.#dir = dir;
    ws.onmessage = (m) => {
      const msg = JSON.parse(String(m.data));
      const p = msg.id !== undefined ? this.#pending.get(msg.id) : undefined;
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${msg.error.message} (${msg.error.code})`));
      else p.resolve(msg.result);
    };
  }

  /** Start the browser with one blank page of `width`×`height`. */
  static async launch(binary: string, width = 1280, height = 900): Promise<Browser> {
    const dir = await Deno.makeTempDir({ prefix: "baton-chromium-" });
    const child = new Deno.Command(binary, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--remote-debugging-port=0",
        `--user-data-dir=${dir}`,
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    let url: string | null = null;
    while (url === null) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${binary} exited before it listened:\n${text}`);
      text += value;
      url = /DevTools listening on (ws:\/\/\S+)/.exec(text)?.[1] ?? null;
    }
    // Keep draining stderr so the browser never blocks on a full pipe.
    (async () => {
      while (!(await reader.read()).done) { /* discard */ }
    })().catch(() => {});
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    const b = new Browser(child, ws, dir);
    const { targetId } = await b.send("Target.createTarget", { url: "about:blank" }) as {
      targetId: string;
    };
    const { sessionId } = await b.send("Target.attachToTarget", { targetId, flatten: true }) as {
      sessionId: string;
    };
    b.#session = sessionId;
    await b.send("Emulation.setDeviceMetricsOverride", {
      width,
      height,
      deviceScaleFactor: 1,
      mobile: false,
    });
    return b;
  }

  /** One DevTools command (on the page once attached). */
  send(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = ++this.#id;
    const msg: Record<string, unknown> = { id, method, params };
    if (this.#session) msg.sessionId = this.#session;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify(msg));
    });
  }

  /** Navigate and wait until the document has loaded. */
  async goto(url: string): Promise<void> {
    await this.send("Page.enable");
    await this.send("Page.navigate", { url });
    for (let i = 0; i < 200; i++) {
      if (await this.evaluate("document.readyState") === "complete") return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${url} did not finish loading`);
  }

  /** Value of a JavaScript expression in the page. */
  async evaluate(expression: string): Promise<unknown> {
    const r = await this.send("Runtime.evaluate", { expression, returnByValue: true }) as {
      result: { value?: unknown };
      exceptionDetails?: { text: string };
    };
    if (r.exceptionDetails) throw new Error(`evaluate: ${r.exceptionDetails.text}`);
    return r.result.value;
  }

  /** PNG of the whole page, written to `path`. */
  async screenshot(path: string): Promise<void> {
    const { data } = await this.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: true,
    }) as { data: string };
    await Deno.writeFile(path, Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
  }

  /** Close the browser and remove its profile. */
  async close(): Promise<void> {
    try {
      this.#ws.close();
    } catch { /* closed */ }
    // The whole tree (renderers, zygotes; the browser itself when `binary` was a wrapper):
    // SIGKILL of the child alone would leave its descendants running under PID 1.
    for (const pid of [this.#child.pid, ...descendants(this.#child.pid)]) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await this.#child.status;
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}
