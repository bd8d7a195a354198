import pg from 'pg';
import postgres from 'postgres';
import { PgPool } from 'nestjs-pg-pool';
import { createBenchRows } from './server.js';
import { formatNumber, interleaved, median, percentile, printTable, ratio } from './measure.js';

type Subject = 'PgPool' | 'multiplexed' | 'pg.Pool' | 'postgres.js';
const SUBJECTS: readonly Subject[] = ['PgPool', 'multiplexed', 'pg.Pool', 'postgres.js'];
const MAX = 10;
const CONCURRENCY = [1, 16, 256];
const OPS_PER_ROUND = 10_000;
const ROUNDS = 5;

/** What both pools offer that the benchmark uses. */
interface QueryPool {
  query(text: string, values?: unknown[]): Promise<unknown>;
  end(): Promise<void>;
}

interface Runner {
  selectOne(): Promise<unknown>;
  fetchRow(id: number): Promise<unknown>;
  sleep(): Promise<unknown>;
  end(): Promise<void>;
}

function runner(subject: Subject, url: string): Runner {
  if (subject === 'postgres.js') {
    const sql = postgres(url, { max: MAX, onnotice: () => undefined });
    return {
      selectOne: () => sql`SELECT 1`,
      fetchRow: (id) => sql`SELECT id, name, score FROM bench_rows WHERE id = ${id}`,
      sleep: () => sql`SELECT pg_sleep(0.05)`,
      end: () => sql.end(),
    };
  }
  const pool: QueryPool = subject === 'PgPool' || subject === 'multiplexed'
    ? new PgPool({ connectionString: url, min: MAX, max: MAX, multiplex: subject === 'multiplexed' })
    : new pg.Pool({ connectionString: url, max: MAX });
  return {
    selectOne: () => pool.query('SELECT 1'),
    fetchRow: (id) => pool.query('SELECT id, name, score FROM bench_rows WHERE id = $1', [id]),
    sleep: () => pool.query('SELECT pg_sleep(0.05)'),
    end: () => pool.end(),
  };
}

interface RoundResult { opsPerSecond: number; p50: number; p99: number }

/** `mixed`: row lookups, with one worker in 32 running `pg_sleep(0.05)` instead; latency is the fast ones'. */
type Kind = 'select1' | 'row' | 'mixed';

async function round(run: Runner, concurrency: number, kind: Kind): Promise<RoundResult> {
  const latencies: number[] = [];
  const perWorker = Math.ceil(OPS_PER_ROUND / concurrency);
  let fastRunning = 0;
  const worker = async (w: number): Promise<void> => {
    // The slow ones sleep for as long as the fast ones run, and no longer.
    if (kind === 'mixed' && w % 32 === 31) {
      while (fastRunning > 0) await run.sleep();
      return;
    }
    fastRunning++;
    for (let i = 0; i < perWorker; i++) {
      const startedAt = performance.now();
      await (kind === 'select1' ? run.selectOne() : run.fetchRow(((w * perWorker + i) % 1000) + 1));
      latencies.push(performance.now() - startedAt);
    }
    fastRunning--;
  };
  const startedAt = performance.now();
  // The fast workers first, so the slow ones find them running.
  const order = Array.from({ length: concurrency }, (_, w) => w).sort((a, b) => Number(a % 32 === 31) - Number(b % 32 === 31));
  await Promise.all(order.map((w) => worker(w)));
  const seconds = (performance.now() - startedAt) / 1000;
  latencies.sort((a, b) => a - b);
  return { opsPerSecond: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

export async function queriesBenchmark(url: string): Promise<Record<string, number>> {
  await createBenchRows(url);

  const runners = Object.fromEntries(SUBJECTS.map((s) => [s, runner(s, url)])) as Record<Subject, Runner>;
  const figures: Record<string, number> = {};
  const rows: string[][] = [];
  try {
    const plan: Array<[Kind, number]> = [
      ...(['select1', 'row'] as const).flatMap((kind) => CONCURRENCY.map((c): [Kind, number] => [kind, c])),
      ['mixed', 64],
    ];
    {
      for (const [kind, concurrency] of plan) {
        // Warm every pool to max before measuring.
        for (const subject of SUBJECTS) await round(runners[subject], MAX, kind);
        const results = await interleaved(SUBJECTS, ROUNDS, (subject) => round(runners[subject], concurrency, kind));
        const summary = (subject: Subject) => ({
          ops: median(results[subject].map((r) => r.opsPerSecond)),
          p50: median(results[subject].map((r) => r.p50)),
          p99: median(results[subject].map((r) => r.p99)),
        });
        const ours = summary('PgPool');
        const muxed = summary('multiplexed');
        const pgPool = summary('pg.Pool');
        const pgjs = summary('postgres.js');
        figures[`${kind}@${concurrency}:throughput-vs-pg`] = ours.ops / pgPool.ops;
        figures[`${kind}@${concurrency}:p99-vs-pg`] = ours.p99 / pgPool.p99;
        figures[`${kind}@${concurrency}:multiplexed-vs-pg`] = muxed.ops / pgPool.ops;
        figures[`${kind}@${concurrency}:multiplexed-vs-postgres.js`] = muxed.ops / pgjs.ops;
        const label = { select1: 'SELECT 1', row: 'row by id', mixed: 'row, 1 in 32 sleeps 50 ms' }[kind];
        rows.push([label, String(concurrency),
          formatNumber(ours.ops), formatNumber(muxed.ops), formatNumber(pgPool.ops), formatNumber(pgjs.ops),
          ratio(ours.ops, pgPool.ops), ratio(muxed.ops, pgPool.ops), ratio(muxed.ops, pgjs.ops),
          `${ours.p50.toFixed(2)} / ${ours.p99.toFixed(2)}`, `${muxed.p50.toFixed(2)} / ${muxed.p99.toFixed(2)}`,
          `${pgPool.p50.toFixed(2)} / ${pgPool.p99.toFixed(2)}`, `${pgjs.p50.toFixed(2)} / ${pgjs.p99.toFixed(2)}`]);
      }
    }
  } finally {
    await Promise.all(SUBJECTS.map((s) => runners[s].end()));
  }
  printTable(`2. Real queries (Node ${process.version}), max ${MAX}, ${formatNumber(OPS_PER_ROUND)} queries a round, median of ${ROUNDS} interleaved rounds ` +
    '(latency in ms; "mux" = PgPool with multiplex: true)',
    ['query', 'conc.', 'PgPool q/s', 'mux q/s', 'pg.Pool q/s', 'postgres.js q/s', 'PgPool vs pg', 'mux vs pg', 'mux vs pg.js',
      'PgPool p50/p99', 'mux p50/p99', 'pg.Pool p50/p99', 'postgres.js p50/p99'], rows);
  return figures;
}
