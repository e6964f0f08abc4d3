/**
 * The commented example manifests that `baton init` writes: by default a one-node manifest
 * named after the host ({@linkcode singleNodeManifest}), with `--cluster` a two-node
 * loopback cluster ({@linkcode EXAMPLE_MANIFEST}, the same text as `examples/baton.yaml`).
 * Every commented key sits where uncommenting it works (a test uncomments them all).
 *
 * @module
 */
import { NAME_PATTERN } from "./schema.ts";

/**
 * A two-node loopback cluster (alpha and beta on 127.0.0.1:7401/7402, a witness on
 * 127.0.0.1:7400) running an http-checked web server that moves on failover and a worker
 * that stays on every node.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile("baton.yaml", EXAMPLE_MANIFEST);
 * ```
 */
export const EXAMPLE_MANIFEST: string =
  `# baton manifest: the nodes of the cluster and the apps it keeps running.
# Every node reads the same file. Durations are strings: 250ms, 10s, 5m, 1h, 1m30s.

cluster:
  name: demo
  # Shared secret that authenticates the nodes to each other (mode 0600, owned by
  # the agent's user). BATON_SECRET (development) and the systemd credential
  # baton.secret win over this file. Relative paths are relative to this file.
  secretFile: ./baton.secret
  heartbeat:
    interval: 200ms   # how often nodes tell each other they are alive
    deadAfter: 1s     # a node silent this long is dead: the standby takes over
    # fenceAfter: 700ms  # an isolated active stops its apps after this (default deadAfter - interval - 100ms)
  # A third party both nodes can reach; with two nodes it decides who stays active
  # when they lose sight of each other. Run it on a third machine in production.
  witness: http://127.0.0.1:7400
  # Self-fencing (a command a node that escalates runs on itself once its apps are stopped;
  # {node} is that node). Survivor fencing is per node instead: nodes.<name>.fence (README).
  # fence: [/usr/local/bin/fence-self, "{node}"]
  # A failed node becomes standby again after this long (default: only \`baton clear\`):
  # failedCooldown: 10m

nodes:
  # The node with the highest priority is active when all are healthy.
  alpha: { url: http://127.0.0.1:7401, priority: 100 }
  beta: { url: http://127.0.0.1:7402, priority: 50 }

apps:
  # Movable (the default): runs on the active node and moves on failover.
  web:
    command: [python3, -m, http.server, "8080", --bind, 127.0.0.1]
    env: { LANG: C.UTF-8 }
    check:
      type: http             # process (default), http, tcp or exec
      url: http://127.0.0.1:8080/
      interval: 1s
      timeout: 1s
      failures: 3            # consecutive failed checks that count as a failure
      initialDelay: 2s       # first check this long after a start (the server is starting)
      # expect: { status: [200], body: "ok" }
    restart:
      limit: 1               # restarts here before the node gives its apps away
      window: 10m
    stop: { signal: SIGTERM, timeout: 10s }

  # Not movable: runs on every node and is only ever restarted in place.
  worker:
    command: [sleep, infinity]
    movable: false

  # The sample app that can crash and hang on demand (needs deno on PATH):
  # sample:
  #   command: [deno, run, --allow-net, --allow-env, examples/sample_app.ts, --port, "8081"]
  #   check: { type: http, url: "http://127.0.0.1:8081/health", initialDelay: 2s }
`;

/**
 * A node name for a host name: its first label, lower-cased, with every character a name may
 * not hold replaced by "-" (`Web-1.example.org` → `web-1`); "node" if nothing is left.
 *
 * @example
 * ```ts
 * nodeNameForHost("Alpha.example.org"); // "alpha"
 * ```
 */
export function nodeNameForHost(hostname: string): string {
  const first = (hostname.split(".")[0] ?? "").toLowerCase().replace(/[^a-z0-9_-]/g, "-")
    .replace(/^[-_]+/, "");
  return NAME_PATTERN.test(first) ? first : "node";
}

/**
 * The one-host manifest of the quick start: node `node` on 127.0.0.1:7401, no witness, the
 * same apps as {@linkcode EXAMPLE_MANIFEST}; commented keys show how to grow it into a
 * cluster.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile("baton.yaml", singleNodeManifest(nodeNameForHost(Deno.hostname())));
 * ```
 */
export function singleNodeManifest(node: string): string {
  return `# baton manifest: the nodes of the cluster and the apps it keeps running.
# Every node reads the same file. Durations are strings: 250ms, 10s, 5m, 1h, 1m30s.
# One node, named after this host; \`baton init --cluster\` writes a two-node example.

cluster:
  name: ${node}
  # Shared secret that authenticates the nodes to each other (mode 0600, owned by
  # the agent's user). BATON_SECRET (development) and the systemd credential
  # baton.secret win over this file. Relative paths are relative to this file.
  secretFile: ./baton.secret
  heartbeat:
    interval: 200ms   # how often nodes tell each other they are alive
    deadAfter: 1s     # a node silent this long is dead: the standby takes over
  # With a second node, a third party both nodes can reach (\`baton witness\`):
  # witness: http://10.0.0.3:7400
  # A failed node becomes standby again after this long (default: only \`baton clear\`):
  # failedCooldown: 10m

nodes:
  ${node}: { url: http://127.0.0.1:7401, priority: 100 }
  # A second host (use addresses both hosts can reach, the same file on both):
  # beta: { url: http://10.0.0.2:7401, priority: 50 }

apps:
  # Movable (the default): runs on the active node and moves on failover.
  web:
    command: [python3, -m, http.server, "8080", --bind, 127.0.0.1]
    env: { LANG: C.UTF-8 }
    check:
      type: http             # process (default), http, tcp or exec
      url: http://127.0.0.1:8080/
      interval: 1s
      timeout: 1s
      failures: 3            # consecutive failed checks that count as a failure
      initialDelay: 2s       # first check this long after a start (the server is starting)
      # expect: { status: [200] }
    restart:
      limit: 1               # restarts here before the node gives its apps away
      window: 10m
    stop: { signal: SIGTERM, timeout: 10s }

  # Not movable: runs on every node and is only ever restarted in place.
  worker:
    command: [sleep, infinity]
    movable: false
`;
}
