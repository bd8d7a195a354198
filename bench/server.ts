import { PostgresServer } from '../test/support/postgres-server.js';

/** The benchmark's PostgreSQL: `BENCH_PG_URL` if set, else a throw-away embedded server. */
export async function benchDatabase(): Promise<{ url: string; stop(): Promise<void> }> {
  if (process.env.BENCH_PG_URL) return { url: process.env.BENCH_PG_URL, stop: async () => undefined };
  const server = await PostgresServer.create({ password: 'bench-password' });
  await server.start();
  return { url: server.url(), stop: () => server.destroy() };
}
