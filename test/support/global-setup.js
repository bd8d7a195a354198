import { PostgresServer } from './postgres-server.js';
import { TEST_PASSWORD } from './test-secrets.js';

/**
 * Starts one throw-away PostgreSQL for the whole run, unless `PG_TEST_URL` names a
 * server to use. Workers are forked after this runs, so they inherit `PG_TEST_URL`.
 * Plain JavaScript: jest loads global setup natively, without the TypeScript transform.
 */
export default async function globalSetup() {
  if (process.env.PG_TEST_URL) return;
  const server = await PostgresServer.create({ password: TEST_PASSWORD });
  await server.start();
  globalThis.__PG_TEST_SERVER__ = server;
  process.env.PG_TEST_URL = server.url();
}
