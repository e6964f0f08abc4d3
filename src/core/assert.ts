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
 * type Shape = { kind: "circle"; r: number } | { kind: "square"; side: number };
 * function area(s: Shape): number {
 *   switch (s.kind) {
 *     case "circle":
 *       return Math.PI * s.r ** 2;
 *     case "square":
 *       return s.side ** 2;
 *     default:
 *       return assertNever(s); // a compile error once a new kind is added and not handled
 *   }
 * }
 * ```
 */
export function assertNever(value: never): never {
  throw new Error(`unexpected case: ${JSON.stringify(value)}`);
}
