import { PostgresServer } from './postgres-server';
import { TEST_PASSWORD } from './test-secrets';

declare global {
  // eslint-disable-next-line no-var
  var __PG_TEST_SERVER__: PostgresServer | undefined;
}

/**
 * Starts one throw-away PostgreSQL for the whole run, unless `PG_TEST_URL` names a
 * server to use. Workers are forked after this runs, so they inherit `PG_TEST_URL`.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.PG_TEST_URL) return;
  const server = await PostgresServer.create({ password: TEST_PASSWORD });
  await server.start();
  globalThis.__PG_TEST_SERVER__ = server;
  process.env.PG_TEST_URL = server.url();
  process.env.PG_TEST_EMBEDDED = '1';
}
