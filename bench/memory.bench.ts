import pg from 'pg';
import { PgPool } from 'nestjs-pg-pool';
import { FakeClientClass } from './fake-client.js';
import { formatNumber, printTable } from './measure.js';

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Heap per waiting request: 50,000 acquires parked behind one held connection. */
async function perWaiter(subject: 'PgPool' | 'pg.Pool'): Promise<number> {
  const waiters = 50_000;
  const pool = subject === 'PgPool'
    ? new PgPool({ connection: {}, Client: FakeClientClass, min: 0, max: 1, acquireTimeoutMs: 600_000 })
    : new pg.Pool({ Client: FakeClientClass, max: 1, connectionTimeoutMillis: 600_000 });
  const held = await pool.connect();
  const before = heapUsed();
  const parked = Array.from({ length: waiters }, () => pool.connect());
  const after = heapUsed();
  held.release();
  for (const pending of parked) (await pending).release();
  await pool.end();
  // Less the parked promises' array slots (8 bytes each), which the harness holds.
  return (after - before) / waiters - 8;
}

/** Heap per idle pooled connection on a real server: 100 connections opened, heap before and after. */
async function perConnection(subject: 'PgPool' | 'pg.Pool', url: string, connections = 100): Promise<number> {
  const before = heapUsed();
  const pool = subject === 'PgPool'
    ? new PgPool({ connectionString: url, min: connections, max: connections })
    : new pg.Pool({ connectionString: url, max: connections });
  if (pool instanceof PgPool) await pool.open({ wait: true });
  else (await Promise.all(Array.from({ length: connections }, () => pool.connect()))).forEach((c) => c.release());
  const after = heapUsed();
  await pool.end();
  return (after - before) / connections;
}

export async function memoryBenchmark(url: string): Promise<Record<string, number>> {
  if (!(globalThis as { gc?: unknown }).gc) console.log('   (run with --expose-gc for exact figures)');
  // Warm-up: the first connections load pg's type parsers and the like, once per process.
  await perConnection('PgPool', url, 5);
  await perConnection('pg.Pool', url, 5);
  const figures = {
    connectionBytes: await perConnection('PgPool', url),
    connectionBytesPg: await perConnection('pg.Pool', url),
    waiterBytes: await perWaiter('PgPool'),
    waiterBytesPg: await perWaiter('pg.Pool'),
  };
  printTable('5. Memory: JavaScript heap per waiting request (fake client) and per idle pooled connection (real server)',
    ['pool', 'bytes per waiter', 'bytes per idle connection'], [
      ['PgPool', formatNumber(figures.waiterBytes), formatNumber(figures.connectionBytes)],
      ['pg.Pool', formatNumber(figures.waiterBytesPg), formatNumber(figures.connectionBytesPg)],
    ]);
  return figures;
}
