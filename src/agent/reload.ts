/**
 * The reload path: re-read the manifest and decide whether the running agent may take it (an
 * invalid manifest, or one that drops this node or moves its URL, changes nothing).
 *
 * @module
 */
import type { NodeState } from "../core/types.ts";
import type { Manifest } from "../manifest/types.ts";
import type { ReloadResult } from "../peer/api_types.ts";
import type { RecordFn } from "./adopt.ts";
import type { AgentOptions } from "./agent_options.ts";
import { errText } from "./effects.ts";

/**
 * Load the manifest for `reload`: the answer to the operator, and the manifest to hand to the
 * core (null: refused, the last good one stays).
 */
export async function loadForReload(
  opts: AgentOptions,
  state: NodeState,
  record: RecordFn,
  log: (line: string) => void,
): Promise<{ result: ReloadResult; manifest: Manifest | null }> {
  // A loader that throws is a refused manifest like any other: the last good one stays.
  const loaded = await opts.loadManifest().catch((err) => ({
    ok: false as const,
    errors: [`cannot load the manifest: ${errText(err)}`],
  }));
  if (!loaded.ok) {
    record(
      "error",
      null,
      "reload_refused",
      `manifest refused: ${loaded.errors.length} error(s); keeping the last good one`,
    );
    for (const e of loaded.errors) log(e);
    return { result: loaded, manifest: null };
  }
  const next = loaded.manifest;
  const me = next.nodes[state.self];
  const before = state.manifest.nodes[state.self];
  if (!me) {
    return {
      result: {
        ok: false,
        errors: [`${next.path}: node "${state.self}" is no longer in nodes`],
      },
      manifest: null,
    };
  }
  if (before && me.url !== before.url) {
    return {
      result: {
        ok: false,
        errors: [`${next.path}: url of "${state.self}" changed; restart the agent to move it`],
      },
      manifest: null,
    };
  }
  return { result: { ok: true, hash: next.hash, warnings: loaded.warnings }, manifest: next };
}
