/**
 * Exhaustiveness checks for the switches over events, actions and faults.
 *
 * @module
 */

/**
 * The end of an exhaustive switch: a case the code does not handle fails to compile, and a
 * value that slips past the types fails loudly.
 *
 * @example
 * ```ts
 * switch (action.type) {
 *   case "spawn": return;
 *   // ... every other case ...
 *   default: assertNever(action);
 * }
 * ```
 */
export function assertNever(value: never): never {
  throw new Error(`unexpected case: ${JSON.stringify(value)}`);
}
