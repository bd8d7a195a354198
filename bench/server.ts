import pg from 'pg';
import { PostgresServer } from '../test/support/postgres-server.js';

/** The benchmark's PostgreSQL: `BENCH_PG_URL` if set, else a throw-away embedded server. */
export async function benchDatabase(): Promise<{ url: string; stop(): Promise<void> }> {
  if (process.env.BENCH_PG_URL) return { url: process.env.BENCH_PG_URL, stop: async () => undefined };
  const server = await PostgresServer.create({ password: 'bench-password' });
  await server.start();
  return { url: server.url(), stop: () => server.destroy() };
}

/** The table the row-by-id benchmarks read: 1,000 rows, created once. */
export async function createBenchRows(url: string): Promise<void> {
  const setup = new pg.Client(url);
  await setup.connect();
  try {
    await setup.query('CREATE TABLE IF NOT EXISTS bench_rows (id int PRIMARY KEY, name text, score float8)');
    await setup.query("INSERT INTO bench_rows SELECT i, 'name ' || i, random() FROM generate_series(1, 1000) i ON CONFLICT DO NOTHING");
  } finally {
    await setup.end();
  }
}
