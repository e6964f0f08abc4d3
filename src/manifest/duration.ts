/**
 * Durations as written in the manifest (`250ms`, `10s`, `5m`, `1h`, `1m30s`) and back.
 *
 * @example
 * ```ts
 * import { formatDuration, parseDuration } from "./duration.ts";
 * parseDuration("1m30s"); // 90000
 * formatDuration(90000); // "1m30s"
 * ```
 *
 * @module
 */

const _UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const _COMPONENT = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)/y;

/**
 * Parses a duration such as `250ms`, `10s`, `5m`, `1h`, `2d` or `1m30s` into milliseconds
 * (rounded to a whole millisecond). Every number needs a unit.
 *
 * @example
 * ```ts
 * parseDuration("1.5s"); // 1500
 * parseDuration("500"); // throws: missing unit
 * ```
 *
 * @throws {Error} when the text is not a duration; the message says what was expected.
 */
export function parseDuration(text: string): number {
  const expected = 'expected a duration such as "250ms", "10s", "5m", "1h" or "1m30s"';
  const source = text.trim();
  if (source === "") throw new Error(`${expected}, found an empty string`);
  if (source.startsWith("-")) {
    throw new Error(`durations cannot be negative, found "${text}"`);
  }
  if (/^\d+(\.\d+)?$/.test(source)) {
    throw new Error(
      `missing unit in duration "${text}": write e.g. "${source}ms" or "${source}s"`,
    );
  }
  let total = 0;
  let pos = 0;
  while (pos < source.length) {
    _COMPONENT.lastIndex = pos;
    const match = _COMPONENT.exec(source);
    if (match === null) {
      throw new Error(`${expected}, found "${text}" (unreadable from "${source.slice(pos)}")`);
    }
    const [whole, amount, unit] = match;
    total += Number(amount) * (_UNIT_MS[unit ?? ""] ?? Number.NaN);
    pos += whole.length;
  }
  if (!Number.isFinite(total) || total > Number.MAX_SAFE_INTEGER) {
    throw new Error(`duration "${text}" is too large`);
  }
  return Math.round(total);
}

/**
 * Formats milliseconds as a duration that {@linkcode parseDuration} reads back to the same
 * value: `250ms`, `1.5s`, `1m30s`, `1h`, `0s`.
 *
 * @example
 * ```ts
 * formatDuration(1500); // "1.5s"
 * formatDuration(5_400_000); // "1h30m"
 * ```
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  let rest = Math.round(Math.abs(ms));
  const sign = ms < 0 && rest > 0 ? "-" : "";
  if (rest === 0) return "0s";
  if (rest < 1000) return `${sign}${rest}ms`;
  let out = "";
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  if (hours > 0) out += `${hours}h`;
  if (minutes > 0) out += `${minutes}m`;
  if (rest > 0) {
    const seconds = Math.floor(rest / 1000);
    const millis = rest % 1000;
    if (millis === 0) out += `${seconds}s`;
    else if (seconds === 0) out += `${millis}ms`;
    else out += `${seconds}.${String(millis).padStart(3, "0").replace(/0+$/, "")}s`;
  }
  return sign + out;
}
