import pg from 'pg';
import { PgPool } from 'nestjs-pg-pool';
import { formatNumber, interleaved, median, printTable } from './measure.js';

const REQUESTS = 1_000;
const ROUNDS = 3;

/** 1,000 requests at once on a cold pool (min 2, max 20): time to serve all, and connections opened. */
async function burst(subject: 'PgPool' | 'pg.Pool', url: string): Promise<{ ms: number; opened: number; peak: number }> {
  let opened = 0;
  let open = 0;
  let peak = 0;
  const onConnect = (): void => {
    opened++;
    peak = Math.max(peak, ++open);
  };
  const onRemove = (): void => { open--; };
  const pool = subject === 'PgPool'
    ? new PgPool({ connectionString: url, min: 2, max: 20, acquireTimeoutMs: 60_000 })
    : new pg.Pool({ connectionString: url, max: 20, connectionTimeoutMillis: 60_000 });
  (pool as PgPool).on('connect', onConnect);
  (pool as PgPool).on('remove', onRemove);
  if (pool instanceof PgPool) await pool.open({ wait: true });
  else await Promise.all([pool.connect(), pool.connect()]).then((cs) => cs.forEach((c) => c.release()));
  const startedAt = performance.now();
  const queryable = pool as { query(text: string): Promise<unknown> };
  await Promise.all(Array.from({ length: REQUESTS }, () => queryable.query('SELECT pg_sleep(0.001)')));
  const ms = performance.now() - startedAt;
  await pool.end();
  return { ms, opened, peak };
}

export async function burstBenchmark(url: string): Promise<Record<string, number>> {
  const results = await interleaved(['PgPool', 'pg.Pool'] as const, ROUNDS, (subject) => burst(subject, url));
  const row = (subject: 'PgPool' | 'pg.Pool') => [subject, formatNumber(median(results[subject].map((r) => r.ms)), 1),
    formatNumber(Math.max(...results[subject].map((r) => r.opened))), formatNumber(Math.max(...results[subject].map((r) => r.peak)))];
  printTable(`3. Burst: ${formatNumber(REQUESTS)} requests at once on a cold pool (min 2, max 20), median of ${ROUNDS} rounds`,
    ['pool', 'all served (ms)', 'connections opened (max)', 'open at once (max)'], [row('PgPool'), row('pg.Pool')]);
  return {
    burstMs: median(results.PgPool.map((r) => r.ms)),
    burstMsPg: median(results['pg.Pool'].map((r) => r.ms)),
    burstOpened: Math.max(...results.PgPool.map((r) => r.opened)),
  };
}
