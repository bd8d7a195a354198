/** Small helpers shared by the benchmarks: rounds, medians, percentiles, tables. */

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function percentile(sortedValues: number[], p: number): number {
  if (sortedValues.length === 0) return Number.NaN;
  const index = Math.min(sortedValues.length - 1, Math.ceil((p / 100) * sortedValues.length) - 1);
  return sortedValues[Math.max(0, index)];
}

/**
 * A distribution-free confidence interval for the median of `values` (95% by default):
 * the order statistics k and n + 1 - k, for the largest k such that fewer than k of n
 * samples fall below the true median with probability at most (1 - confidence) / 2
 * (a binomial(n, 1/2) tail). With 15 samples it is the 4th and 12th; with 30, the 10th
 * and 21st. Wide when the machine is noisy: a target is met only if the interval says so.
 */
export function medianInterval(values: number[], confidence = 0.95): [number, number] {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const tail = (1 - confidence) / 2;
  // k: how many j have P(X <= j) <= tail, X ~ binomial(n, 1/2); the interval is then
  // [x(k), x(n + 1 - k)], counting from 1, with coverage 1 - 2 P(X <= k - 1).
  let k = 0;
  let below = 0;
  let choose = 1;
  for (let j = 0; j < n; j++) {
    below += choose / 2 ** n;
    if (below > tail) break;
    k = j + 1;
    choose = (choose * (n - j)) / (j + 1);
  }
  // Too few samples for that confidence: the whole range is all there is.
  if (k === 0) return [sorted[0], sorted[n - 1]];
  return [sorted[k - 1], sorted[n - k]];
}

/**
 * Runs `fn` `rounds` times for each subject, interleaved and rotated (A B C, B C A, C A B …)
 * so that drift and position in the round hit every subject alike.
 */
export async function interleaved<S extends string, R>(subjects: readonly S[], rounds: number,
  fn: (subject: S, round: number) => Promise<R>): Promise<Record<S, R[]>> {
  const results = Object.fromEntries(subjects.map((s) => [s, [] as R[]])) as Record<S, R[]>;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < subjects.length; i++) {
      const subject = subjects[(i + round) % subjects.length];
      results[subject].push(await fn(subject, round));
    }
  }
  return results;
}

export function formatNumber(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Prints a plain-text table: a title, a header row, aligned columns. */
export function printTable(title: string, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

export function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}x`;
}
