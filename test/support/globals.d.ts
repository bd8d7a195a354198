import type { PostgresServer } from './postgres-server.js';

declare global {
  /** The server global-setup.js started, for global-teardown.js (absent with PG_TEST_URL). */
  // eslint-disable-next-line no-var
  var __PG_TEST_SERVER__: PostgresServer | undefined;
}
