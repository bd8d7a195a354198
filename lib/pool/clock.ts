/**
 * The pool's clock for deadlines, lifetimes and idle times: monotonic, so a wall-clock
 * step (NTP, a VM resumed, an operator's `date -s`) neither times waiters out early nor
 * expires every connection at once. Milliseconds from an arbitrary origin: compare and
 * subtract its values, never show them as dates.
 */
export function monotonicNow(): number {
  return performance.now();
}
