import pg from 'pg';
import { PgPool } from 'nestjs-pg-pool';
import { FakeClientClass } from './fake-client.js';
import { formatNumber, interleaved, median, printTable, ratio } from './measure.js';

interface BorrowPool {
  connect(): Promise<{ release(): void }>;
  end(): Promise<void>;
}

const MAX = 10;
const BORROWERS = [1, 64, 1_024, 10_000];
const OPS = 200_000;
const ROUNDS = 5;

function makePool(kind: 'PgPool' | 'pg.Pool'): BorrowPool {
  if (kind === 'PgPool') {
    return new PgPool({ connection: {}, Client: FakeClientClass, min: 0, max: MAX, acquireTimeoutMs: 600_000 });
  }
  return new pg.Pool({ Client: FakeClientClass, max: MAX, connectionTimeoutMillis: 600_000 }) as unknown as BorrowPool;
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
  for (const borrowers of BORROWERS) {
    const results = await interleaved(['PgPool', 'pg.Pool'] as const, ROUNDS, async (kind) => {
      const pool = makePool(kind);
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
    rows.push([formatNumber(borrowers), formatNumber(ours), formatNumber(theirs), ratio(ours, theirs),
      `${(1e9 / ours).toFixed(0)} ns`]);
  }
  printTable(`1. Pool overhead: acquire+release per second, no database (fake client), max ${MAX}, median of ${ROUNDS} rounds`,
    ['borrowers', 'PgPool ops/s', 'pg.Pool ops/s', 'PgPool / pg.Pool', 'PgPool ns/op'], rows);
  const flat = figures['pgpool-rate@64'] / figures['pgpool-rate@10000'];
  console.log(`   PgPool per-op cost, 10,000 borrowers vs 64 (9,990 vs 54 waiting): ${flat.toFixed(2)}x ` +
    '(1.00 = flat; O(1) queue)');
  figures.flatness = flat;
  return figures;
}
