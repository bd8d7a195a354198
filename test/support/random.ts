/**
 * A seeded random integer generator (mulberry32) for load tests: the same seed gives the
 * same traffic, so a failing run can be replayed. `random(n)` is uniform in [0, n).
 */
export function seededRandom(seed: number): (n: number) => number {
  let state = seed | 0;
  return (n: number): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4_294_967_296) * n);
  };
}
