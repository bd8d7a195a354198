import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { PgPool } from 'nestjs-pg-pool';
import { FakeClient, FakeClientClass } from './fake-client.js';
import { formatNumber, interleaved, median, printTable, ratio } from './measure.js';

interface BorrowPool {
  connect(): Promise<{ release(): void }>;
  end(): Promise<void>;
}

const MAX = 10;
const BORROWERS = [1, 64, 1_024, 10_000];
const OPS = 200_000;
const ROUNDS = 5;

type Subject = 'PgPool' | 'pg.Pool' | 'PgPool (baseline)';

/**
 * With `BENCH_BASELINE=<dir>` (a checkout of an earlier version, built: `<dir>/dist`), its
 * PgPool runs in the same rounds as a third subject: a change's cost, side by side.
 */
async function loadBaseline(): Promise<typeof PgPool | undefined> {
  const dir = process.env.BENCH_BASELINE;
  if (!dir) return undefined;
  const module = await import(pathToFileURL(resolve(dir, 'dist/index.js')).href) as { PgPool: typeof PgPool };
  return module.PgPool;
}

/**
 * A client class of each subject's own: pools that add properties to their clients (or
 * read through them) would otherwise share the fake client's hidden classes, and each
 * would run with the other's shapes in its inline caches, measuring the mix, not itself.
 */
const clientClassOf: Record<Subject, typeof FakeClientClass> = {
  PgPool: class extends FakeClient {} as unknown as typeof FakeClientClass,
  'pg.Pool': class extends FakeClient {} as unknown as typeof FakeClientClass,
  'PgPool (baseline)': class extends FakeClient {} as unknown as typeof FakeClientClass,
};

function makePool(kind: Subject, baseline: typeof PgPool | undefined): BorrowPool {
  if (kind === 'PgPool' || kind === 'PgPool (baseline)') {
    const Pool = kind === 'PgPool' ? PgPool : baseline as typeof PgPool;
    return new Pool({ connection: {}, Client: clientClassOf[kind], min: 0, max: MAX, acquireTimeoutMs: 600_000 });
  }
  return new pg.Pool({ Client: clientClassOf[kind], max: MAX, connectionTimeoutMillis: 600_000 }) as unknown as BorrowPool;
}

/** `borrowers` concurrent loops of connect + release, `OPS` in all; returns ops/s. */
async function borrowRate(pool: BorrowPool, borrowers: number): Promise<number> {
  const perBorrower = Math.max(1, Math.floor(OPS / borrowers));
  const loop = async (): Promise<void> => {
    for (let i = 0; i < perBorrower; i++) (await pool.connect()).release();
  };
  const startedAt = process.hrtime.bigint();
  await Promise.all(Array.from({ length: borrowers }, loop));
  const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
  return (perBorrower * borrowers) / seconds;
}

export async function overheadBenchmark(): Promise<Record<string, number>> {
  const rows: string[][] = [];
  const figures: Record<string, number> = {};
  const baseline = await loadBaseline();
  const subjects: Subject[] = baseline ? ['PgPool', 'pg.Pool', 'PgPool (baseline)'] : ['PgPool', 'pg.Pool'];
  for (const borrowers of BORROWERS) {
    const results = await interleaved(subjects, ROUNDS, async (kind) => {
      const pool = makePool(kind, baseline);
      try {
        await borrowRate(pool, Math.min(borrowers, 10)); // warm-up: opens the connections
        return await borrowRate(pool, borrowers);
      } finally {
        await pool.end();
      }
    });
    const ours = median(results.PgPool);
    const theirs = median(results['pg.Pool']);
    figures[`overhead@${borrowers}`] = ours / theirs;
    figures[`pgpool-rate@${borrowers}`] = ours;
    const row = [formatNumber(borrowers), formatNumber(ours), formatNumber(theirs), ratio(ours, theirs), `${(1e9 / ours).toFixed(0)} ns`];
    if (baseline) {
      const before = median(results['PgPool (baseline)']);
      row.push(formatNumber(before), ratio(ours, before));
    }
    rows.push(row);
  }
  const header = ['borrowers', 'PgPool ops/s', 'pg.Pool ops/s', 'PgPool / pg.Pool', 'PgPool ns/op'];
  if (baseline) header.push('baseline ops/s', 'PgPool / baseline');
  printTable(`1. Pool overhead: acquire+release per second, no database (fake client), max ${MAX}, median of ${ROUNDS} rounds`,
    header, rows);
  if (baseline) console.log(`   baseline: ${process.env.BENCH_BASELINE}`);
  const flat = figures['pgpool-rate@64'] / figures['pgpool-rate@10000'];
  console.log(`   PgPool per-op cost, 10,000 borrowers vs 64 (9,990 vs 54 waiting): ${flat.toFixed(2)}x ` +
    '(1.00 = flat; O(1) queue)');
  figures.flatness = flat;
  return figures;
}
