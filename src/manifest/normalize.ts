/**
 * Turns a validated raw manifest into the normalized {@linkcode Manifest}: durations in ms,
 * defaults filled in, paths absolute, and the manifest's canonical hash.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { type RawApp, type RawCheck, type RawManifest } from "./schema.ts";
import { resolveRunAs, systemUserDb } from "./app_user.ts";
import type { AppSpec, CheckSpec, Manifest, NodeSpec } from "./types.ts";
import { toVipSpecs } from "./vip.ts";
import { normalizeGroups } from "./groups.ts";
import { defaultFenceAfter } from "./semantics.ts";

function _canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(_canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${_canonicalJson(record[k])}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

async function _sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function _trimUrl(url: string): string {
  return url.replace(/\/+$/, "");
}

function _check(check: RawCheck): CheckSpec {
  if (check.type === "process") return { type: "process" };
  const timing = {
    intervalMs: check.interval,
    timeoutMs: check.timeout,
    failures: check.failures,
    initialDelayMs: check.initialDelay,
  };
  switch (check.type) {
    case "http":
      return {
        type: "http",
        url: check.url,
        expectStatus: check.expect?.status ?? null,
        expectBody: check.expect?.body ?? null,
        ...timing,
      };
    case "tcp":
      return {
        type: "tcp",
        host: check.address?.host ?? check.host ?? "127.0.0.1",
        // The semantic pass rejects a tcp check with neither port nor address.
        port: check.address?.port ?? check.port ?? 0,
        ...timing,
      };
    case "exec":
      return { type: "exec", command: check.command, ...timing };
  }
}

/** s3proc's keys of an app (pidFile, limits, logs), only those that are set. */
function _processModel(app: RawApp, abs: (p: string) => string): Partial<AppSpec> {
  const out: Partial<AppSpec> = {};
  if (app.pidFile !== undefined) out.pidFile = abs(app.pidFile);
  if (app.limits !== undefined) {
    const l = app.limits;
    out.limits = {
      ...(l.memory !== undefined ? { memoryBytes: l.memory } : {}),
      ...(l.cpu !== undefined ? { cpuWeight: l.cpu } : {}),
      ...(l.tasks !== undefined ? { tasks: l.tasks } : {}),
      ...(l.openFiles !== undefined ? { openFiles: l.openFiles } : {}),
    };
  }
  if (app.logs !== undefined) out.logs = { maxBytes: app.logs.maxSize, keep: app.logs.keep };
  return out;
}

/** `runAs` and `inheritEnv` of an app spec, present only when the manifest sets them. */
function _trustSpec(app: RawApp): Pick<AppSpec, "runAs" | "inheritEnv"> {
  const r = app.user === undefined ? null : resolveRunAs(app.user, app.group, systemUserDb());
  return {
    ...(r?.ok ? { runAs: r.runAs } : {}),
    ...(app.inheritEnv !== undefined ? { inheritEnv: app.inheritEnv } : {}),
  };
}

/** The normalized manifest of a validated raw one. */
export async function _normalize(raw: RawManifest, path: string): Promise<Manifest> {
  const dir = dirname(path);
  const abs = (p: string) => resolve(dir, p);
  const c = raw.cluster;
  const nodes: Record<string, NodeSpec> = {};
  for (const [name, node] of Object.entries(raw.nodes)) {
    nodes[name] = {
      name,
      url: _trimUrl(node.url),
      priority: node.priority,
      ...(node.maxGroups !== undefined ? { maxGroups: node.maxGroups } : {}),
      ...(node.fence ? { fence: node.fence } : {}),
      ...(node.fenceCredentials ? { fenceCredentials: abs(node.fenceCredentials) } : {}),
    };
  }
  const anyFence = Object.values(nodes).some((n) => n.fence !== undefined);
  const apps: Record<string, AppSpec> = {};
  for (const [name, app] of Object.entries(raw.apps)) {
    const spec: Omit<AppSpec, "hash"> = {
      name,
      command: app.command,
      cwd: app.cwd === undefined ? null : abs(app.cwd),
      env: app.env,
      movable: app.movable,
      nodes: app.nodes ?? null,
      check: _check(app.check),
      restart: {
        limit: app.restart.limit,
        windowMs: app.restart.window,
        backoffMs: app.restart.backoff,
        backoffMaxMs: app.restart.backoffMax,
      },
      stop: { signal: app.stop.signal, timeoutMs: app.stop.timeout },
      ..._trustSpec(app),
      dependsOn: app.dependsOn,
      readyTimeoutMs: app.readyTimeout,
      ..._processModel(app, abs),
    };
    const { command, cwd, env, check, stop, movable, nodes: where, runAs, inheritEnv } = spec;
    const { pidFile, limits, logs } = spec;
    const hash = await _sha256Hex(
      _canonicalJson({
        command,
        cwd,
        env,
        check,
        stop,
        movable,
        nodes: where,
        ...(runAs ? { runAs } : {}),
        ...(inheritEnv ? { inheritEnv } : {}),
        pidFile,
        limits,
        logs,
      }),
    );
    apps[name] = { ...spec, hash };
  }
  const cluster: Manifest["cluster"] = {
    name: c.name,
    secretFile: c.secretFile === undefined ? null : abs(c.secretFile),
    heartbeat: {
      intervalMs: c.heartbeat.interval,
      deadAfterMs: c.heartbeat.deadAfter,
      fenceAfterMs: c.heartbeat.fenceAfter ??
        defaultFenceAfter(c.heartbeat.interval, c.heartbeat.deadAfter),
    },
    witness: c.witness == null ? null : { url: _trimUrl(c.witness.url), kind: c.witness.kind },
    ...(c.coordinator
      ? {
        coordinator: {
          etcd: {
            endpoints: c.coordinator.etcd.endpoints.map(_trimUrl),
            prefix: c.coordinator.etcd.prefix.replace(/\/+$/, "") || "/",
            ttlSeconds: c.coordinator.etcd.ttl,
            tls: c.coordinator.etcd.tls === undefined ? null : {
              ca: abs(c.coordinator.etcd.tls.ca),
              cert: c.coordinator.etcd.tls.cert === undefined
                ? null
                : abs(c.coordinator.etcd.tls.cert),
              key: c.coordinator.etcd.tls.key === undefined
                ? null
                : abs(c.coordinator.etcd.tls.key),
            },
          },
        },
      }
      : {}),
    fence: c.fence ?? null,
    fencing: {
      mode: c.fencing ?? (anyFence ? "required" : "off"),
      timeoutMs: c.fenceTimeout,
      delayMs: c.fenceDelay,
      retryMs: c.fenceRetry,
    },
    failedCooldownMs: c.failedCooldown ?? null,
    ...(c.vip && c.vip.length > 0 ? { vip: toVipSpecs(c.vip) } : {}),
    ...(c.watchdog && c.watchdog.mode !== "off"
      ? { watchdog: { mode: c.watchdog.mode, device: c.watchdog.device } }
      : {}),
    tls: c.tls === undefined ? null : {
      cert: abs(c.tls.cert),
      key: abs(c.tls.key),
      ca: c.tls.ca === undefined ? null : abs(c.tls.ca),
    },
    notify: (c.notify ?? []).map((n) => ({
      webhook: n.webhook ?? null,
      exec: n.exec ?? null,
      secretFile: n.secretFile === undefined ? null : abs(n.secretFile),
      kinds: n.kinds ?? null,
      level: n.level,
      timeoutMs: n.timeout,
    })),
  };
  const hash = await _sha256Hex(
    _canonicalJson({ cluster, nodes, apps, ...(raw.groups ? { groups: raw.groups } : {}) }),
  );
  const movable = Object.fromEntries(Object.values(apps).map((a) => [a.name, a.movable]));
  const groups = normalizeGroups(raw.groups ?? {}, movable);
  return { cluster, nodes, apps, groups, hash, path };
}
