/**
 * The hostile client of `scripts/dos_flood.ts` and the flood fault test: a Python process that
 * keeps `conns` connections open to one port from 100 loopback source addresses (127.0.0.2…),
 * half sending a request head one byte at a time (slow headers), half a 10 MB body one byte at
 * a time (slow body), reconnecting whenever the target closes one.
 *
 * @example
 * ```ts
 * const a = spawnAttacker("127.0.0.1", 7401, 1000, 20);
 * console.log(`reconnected ${await a.reconnects} times`);
 * ```
 *
 * @module
 */

/** The attacker's Python source. */
export const ATTACKER = `
import socket, sys, time
host, port, n, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
HEAD = b"POST /v1/heartbeat HTTP/1.1\\r\\nHost: x\\r\\n"
BODY = b"POST /v1/heartbeat HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 10000000\\r\\n\\r\\n"
def open_one(i):
    s = socket.socket()
    s.bind(("127.0.0.%d" % (2 + i % 100), 0))
    s.settimeout(1.0)
    try:
        s.connect((host, port))
        s.send(HEAD if i % 2 == 0 else BODY)
    except OSError:
        s.close()
        return None
    s.setblocking(False)
    return s
socks = [open_one(i) for i in range(n)]
reconnects = 0
end = time.time() + seconds
while time.time() < end:
    for i in range(n):
        s = socks[i]
        ok = False
        if s is not None:
            try:
                if s.recv(4096) == b"":
                    raise OSError("closed")
            except BlockingIOError:
                ok = True
            except OSError:
                pass
            if ok:
                try:
                    s.send(b"x")
                except OSError:
                    ok = False
        if not ok:
            if s is not None:
                s.close()
            socks[i] = open_one(i)
            reconnects += 1
    time.sleep(0.2)
print(reconnects)
`;

/** A running attacker: `reconnects` resolves when it is done (after `seconds`). */
export interface Attacker {
  reconnects: Promise<number>;
  kill(): void;
}

/** Start the attacker against `host:port` (needs python3). */
export function spawnAttacker(
  host: string,
  port: number,
  conns: number,
  seconds: number,
): Attacker {
  const child = new Deno.Command("python3", {
    args: ["-c", ATTACKER, host, String(port), String(conns), String(seconds)],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  return {
    reconnects: child.output().then((o) => Number(new TextDecoder().decode(o.stdout).trim())),
    kill: () => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    },
  };
}

/** Resident memory of a process in KiB (0 if it is gone). */
export function rssKiB(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? "0");
  } catch {
    return 0;
  }
}
