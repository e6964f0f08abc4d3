/**
 * The commented example manifest that `baton init` writes; `examples/baton.yaml` holds the
 * same text.
 *
 * @module
 */

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
  # Shared secret that authenticates the nodes to each other. The BATON_SECRET
  # environment variable wins over this file. Relative paths are relative to this file.
  secretFile: ./baton.secret
  heartbeat:
    interval: 200ms   # how often nodes tell each other they are alive
    deadAfter: 1s     # a node silent this long is dead: the standby takes over
    # fenceAfter: 700ms  # an isolated active stops its apps after this (default deadAfter - interval - 100ms)
  # A third party both nodes can reach; with two nodes it decides who stays active
  # when they lose sight of each other. Run it on a third machine in production.
  witness: http://127.0.0.1:7400
  # Command run when a node escalates and has stopped its apps, e.g. a power-off:
  # fence: [ipmitool, -H, bmc-alpha, -U, admin, chassis, power, off]
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
    # Or the sample app that can crash and hang on demand:
    # command: [deno, run, --allow-net, --allow-env, examples/sample_app.ts, --port, "8080"]
    env: { LANG: C.UTF-8 }
    check:
      type: http             # process (default), http, tcp or exec
      url: http://127.0.0.1:8080/
      interval: 1s
      timeout: 1s
      failures: 3            # consecutive failed checks that count as a failure
      # expect: { status: [200], body: "ok" }
    restart:
      limit: 1               # restarts here before the node gives its apps away
      window: 10m
    stop: { signal: SIGTERM, timeout: 10s }

  # Not movable: runs on every node and is only ever restarted in place.
  worker:
    command: [sleep, infinity]
    movable: false
`;
