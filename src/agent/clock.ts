/**
 * The agent's clocks and timers: they live in `src/clock/clock.ts` (below every layer that
 * needs time: the core's callers, the stores' and runners' twins, the simulation); this module
 * re-exports them for the agent.
 *
 * @module
 */
export {
  type Clock,
  ManualClock,
  realClock,
  realTimers,
  type TimerHandle,
  type Timers,
} from "../clock/clock.ts";
