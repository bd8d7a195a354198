import { performance } from 'node:perf_hooks';

/**
 * The pool's clock for deadlines, lifetimes and idle times: monotonic, so a wall-clock
 * step (NTP, a VM resumed, an operator's `date -s`) neither times waiters out early nor
 * expires every connection at once. Milliseconds from an arbitrary origin: compare and
 * subtract its values, never show them as dates.
 */
export function monotonicNow(): number {
  // The imported binding, not the global: Node's global `performance` is an accessor.
  return performance.now();
}
