import { PgPool } from 'nestjs-pg-pool';
import { formatNumber, interleaved, median, printTable, ratio } from './measure.js';

type Subject = 'never' | 'auto' | 'auto, SET in each checkout' | 'always' | 'settings in a transaction';
const SUBJECTS: readonly Subject[] = ['never', 'auto', 'auto, SET in each checkout', 'always', 'settings in a transaction'];
const MAX = 4;
const CONCURRENCY = 16;
const OPS_PER_ROUND = 5_000;
const ROUNDS = 5;

/** One checkout per request: what each return policy costs it. */
async function round(subject: Subject, url: string): Promise<number> {
  const resetOnReturn = subject === 'never' ? 'never' : subject === 'always' ? 'always' : 'auto';
  const pool = new PgPool({ connectionString: url, min: MAX, max: MAX, resetOnReturn });
  await pool.open({ wait: true });
  const request = subject === 'settings in a transaction'
    ? () => pool.withTransaction((client) => client.query('SELECT 1'), { settings: { 'app.tenant_id': '42' } })
    : subject === 'auto, SET in each checkout'
      ? () => pool.withConnection(async (client) => {
        await client.query("SET app.tenant_id = '42'");
        return client.query('SELECT 1');
      })
      : () => pool.withConnection((client) => client.query('SELECT 1'));
  const perWorker = OPS_PER_ROUND / CONCURRENCY;
  const startedAt = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (let i = 0; i < perWorker; i++) await request();
  }));
  const opsPerSecond = (OPS_PER_ROUND / (performance.now() - startedAt)) * 1_000;
  await pool.close();
  return opsPerSecond;
}

/**
 * What `resetOnReturn` costs a checkout that runs one SELECT 1: nothing under 'auto'
 * unless the checkout changed the session; a round trip per checkout under 'always'.
 */
export async function resetBenchmark(url: string): Promise<Record<string, number>> {
  const results = await interleaved(SUBJECTS, ROUNDS, (subject) => round(subject, url));
  const never = median(results.never);
  const rows = SUBJECTS.map((subject) => {
    const ops = median(results[subject]);
    return [subject, formatNumber(ops), ratio(ops, never)];
  });
  printTable(`8. Return policy (resetOnReturn), Node ${process.version}: checkouts/s, each one SELECT 1 (the 'SET' row adds a SET, ` +
    `the 'settings' row is BEGIN + set_config + SELECT 1 + COMMIT), max ${MAX}, ${CONCURRENCY} callers, median of ${ROUNDS} interleaved rounds`,
  ['policy', 'checkouts/s', 'vs never'], rows);
  return Object.fromEntries(SUBJECTS.map((subject) => [subject, median(results[subject])]));
}
