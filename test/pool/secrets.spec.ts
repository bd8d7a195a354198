import { parseIntoClientConfig } from 'pg-connection-string';
import { PgPool, redactConnectionString } from '../../lib/index.js';
import { appNameOf, createTestPool, eventually, recordingLogger, terminateBackends, testPassword, testUrl } from '../support/database.js';
import { freePort } from '../support/postgres-server.js';

/** The test server's URL, real password included, with one part changed. */
function urlWith(change: { database?: string; port?: number }): string {
  const config = parseIntoClientConfig(testUrl());
  return `postgresql://${config.user}:${encodeURIComponent(testPassword())}@${config.host}:${change.port ?? config.port}/${change.database ?? config.database}`;
}

describe('secrets', () => {
  it('never puts the password in an error, a log line, an event or the stats, on any failure path', async () => {
    const password = testPassword();
    const seen: string[] = [];
    const lines: string[] = [];
    const logger = recordingLogger(lines);
    const watch = (pool: PgPool): PgPool => {
      pool.on('connectError', (error) => seen.push(error.message, String(error.stack)));
      pool.on('error', (error) => seen.push(error.message));
      pool.on('remove', (_client, reason) => seen.push(reason));
      return pool;
    };
    const capture = async (promise: Promise<unknown>): Promise<void> => {
      await promise.catch((error: Error) => seen.push(error.message, String(error.stack), JSON.stringify(error)));
    };

    // Unknown database, refused port, a failing configure: fail fast and reconnect paths.
    await capture(watch(createTestPool({ connectionString: urlWith({ database: 'nope' }), logger })).open({ wait: true }));
    const refused = watch(createTestPool({
      connectionString: urlWith({ port: await freePort() }), logger, min: 1,
      reconnectDelayMs: 10, reconnectMaxDelayMs: 20, reconnectTimeoutMs: 30, acquireTimeoutMs: 100,
    }));
    await refused.open();
    await capture(refused.acquire());
    await eventually('the give-up log line was written', () => lines.some((l) => l.includes('reconnecting has failed')));
    await capture(watch(createTestPool({ connectionString: testUrl(), logger, configure: () => { throw new Error(`bad configure for ${testUrl()}`); } })).open({ wait: true }));

    // A lost idle connection and a failing reset are logged.
    const pool = watch(createTestPool({ connectionString: testUrl(), logger, min: 1, reset: () => { throw new Error('reset failed'); } }));
    await pool.open({ wait: true });
    await terminateBackends(appNameOf(pool));
    await eventually('the loss was logged', () => lines.some((l) => l.includes('was lost')));
    await eventually('the pool is back at min', () => pool.getStats().poolAvailable === 1);
    const client = await pool.acquire();
    await client[Symbol.asyncDispose]();
    seen.push(JSON.stringify(pool.getStats()), JSON.stringify(refused.getStats()), pool.target, refused.target,
      JSON.stringify(pool.options), JSON.stringify(refused.options));

    const everything = [...seen, ...lines].join('\n');
    expect(lines.length).toBeGreaterThan(3);
    expect(everything).toContain('database "nope" does not exist');
    expect(everything).toContain('ECONNREFUSED');
    expect(everything).not.toContain(password);
    expect(everything).not.toContain(encodeURIComponent(password));
  });

  it('redacts passwords with @ : / % and unicode in connection strings', () => {
    const password = 'p@ss:w/rd%ü';
    const url = `postgresql://app:${password}@db.example:5432/main`;
    expect(redactConnectionString(url)).toBe('postgresql://app:***@db.example:5432/main');
    expect(redactConnectionString(`postgresql://app:${encodeURIComponent(password)}@db/main`)).toBe('postgresql://app:***@db/main');
  });
});
