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
