import { Client } from 'pg';
import { PoolOpenError, type PgPool } from '../../lib/index.js';
import { createTestPool, eventually } from '../support/database.js';
import { freePort, PostgresServer } from '../support/postgres-server.js';
import { TEST_PASSWORD } from '../support/test-secrets.js';

const password = encodeURIComponent(TEST_PASSWORD);
const url = (...ports: number[]): string => `postgresql://postgres:${password}@${ports.map((p) => `127.0.0.1:${p}`).join(',')}/postgres`;

async function sql<R extends Record<string, unknown>>(server: PostgresServer, text: string): Promise<R[]> {
  const client = new Client(server.url());
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

/** Which server the pool's connection is on: its port and whether it is a standby. */
async function landedOn(pool: PgPool): Promise<{ port: number; standby: boolean }> {
  const { rows } = await pool.query<{ port: number; standby: boolean }>(
    "SELECT current_setting('port')::int AS port, pg_is_in_recovery() AS standby");
  return rows[0];
}

describe('several hosts: a primary and a streaming standby', () => {
  let primary: PostgresServer;
  let standby: PostgresServer;

  beforeAll(async () => {
    primary = await PostgresServer.create({ password: TEST_PASSWORD });
    await primary.start();
    await sql(primary, 'CREATE TABLE failover_spec (id serial PRIMARY KEY, at timestamptz DEFAULT now())');
    standby = await PostgresServer.standbyOf(primary);
    await eventually('the standby streams from the primary', async () =>
      (await sql<{ n: number }>(primary, "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'"))[0].n === 1, 20_000);
  }, 60_000);

  afterAll(async () => {
    await standby?.destroy();
    await primary?.destroy();
  });

  it('tries the hosts in order and skips one that refuses', async () => {
    const pool = createTestPool({ connectionString: url(await freePort(), primary.port), min: 1 });
    await pool.open({ wait: true });
    expect(await landedOn(pool)).toEqual({ port: primary.port, standby: false });
    expect(pool.target).toMatch(/^127\.0\.0\.1:\d+,127\.0\.0\.1:\d+\/postgres$/);
  });

  it.each([
    ['read-write', 'primary'],
    ['primary', 'primary'],
    ['read-only', 'standby'],
    ['standby', 'standby'],
    ['prefer-standby', 'standby'],
    ['any', 'first'],
  ] as const)('with targetSessionAttrs %s, lands on the %s', async (attrs, expected) => {
    // Listed in the order that makes the choice matter: the other kind first.
    const first = expected === 'primary' ? standby : primary;
    const second = first === primary ? standby : primary;
    const pool = createTestPool({ connectionString: url(first.port, second.port), targetSessionAttrs: attrs, min: 1 });
    await pool.open({ wait: true });
    const on = await landedOn(pool);
    const wanted = expected === 'first' ? first : expected === 'primary' ? primary : standby;
    expect(on.port).toBe(wanted.port);
  });

  it('with loadBalanceHosts, spreads new connections over the hosts in random order', async () => {
    const ports = new Set<number>();
    for (let i = 0; i < 20 && ports.size < 2; i++) {
      const pool = createTestPool({ connectionString: url(primary.port, standby.port), loadBalanceHosts: true, min: 1, max: 1 });
      ports.add((await landedOn(pool)).port);
      await pool.close();
    }
    // Both hosts got connections (the chance of 20 draws all on one host is 2 in a million).
    expect([...ports].sort()).toEqual([primary.port, standby.port].sort());
  });

  it('reads target_session_attrs from the URL', async () => {
    const pool = createTestPool({ connectionString: `${url(standby.port, primary.port)}?target_session_attrs=read-write`, min: 1 });
    expect(pool.options.target.targetSessionAttrs).toBe('read-write');
    expect((await landedOn(pool)).port).toBe(primary.port);
  });

  it('names every host tried and why it was refused when none matches', async () => {
    const refused = await freePort();
    const pool = createTestPool({ name: 'writer', connectionString: url(refused, standby.port), targetSessionAttrs: 'read-write', min: 1 });
    const error = await pool.open({ wait: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolOpenError);
    const message = (error as Error).message;
    expect(message).toMatch(/^pool 'writer': cannot connect to 127\.0\.0\.1:\d+,127\.0\.0\.1:\d+\/postgres: no host matched target_session_attrs=read-write: /);
    expect(message).toContain(`127.0.0.1:${refused}: connect ECONNREFUSED`);
    expect(message).toContain(`127.0.0.1:${standby.port}: is a standby (read-only)`);
    expect(message).not.toContain(TEST_PASSWORD);
  });

  // Last: it promotes the standby.
  it('fails over with the default backoff: after an 8 s outage, the first write follows the promotion within about a second', async () => {
    // Default backoff (1, 2, 4, 8 s ...): while requests wait, attempts come every
    // DEMAND_RETRY_MS instead, so the outage's length does not delay recovery.
    const pool = createTestPool({
      connectionString: url(primary.port, standby.port), targetSessionAttrs: 'read-write', min: 2, max: 4,
      acquireTimeoutMs: 2_000, checkOnAcquire: true,
    });
    await pool.open({ wait: true });
    await pool.query('INSERT INTO failover_spec DEFAULT VALUES');
    await primary.stop();
    // Requests keep coming during an 8 s outage, as in a live service: each fails fast
    // (PoolUnavailableError) and the next one follows.
    let writable = false;
    let firstWriteAt = 0;
    const load = (async () => {
      while (!firstWriteAt) {
        try {
          await pool.query('INSERT INTO failover_spec DEFAULT VALUES');
          if (writable) firstWriteAt = performance.now();
        } catch {
          // the outage: expected until the standby is promoted
        }
      }
    })();
    // 8 s: the default backoff's attempts come at about 1, 3, 7 and 15 s, so a pool that
    // follows its backoff alone would find the promoted standby some 7 s late.
    const outageEnds = performance.now() + 8_000;
    await eventually('the outage has lasted 8 s', () => performance.now() >= outageEnds, 12_000);
    // From the promotion's start: pg_promote() returns once the standby takes writes.
    const promotedAt = performance.now();
    writable = true;
    await sql(standby, 'SELECT pg_promote()');
    const promotionMs = Math.round(performance.now() - promotedAt);
    await Promise.race([load, eventually('a write succeeds through the pool', () => firstWriteAt > 0, 20_000)]);
    await load;
    const failoverMs = Math.round(firstWriteAt - promotedAt);
    process.stdout.write(`failover: first write ${failoverMs} ms after pg_promote() was called (promotion took ${promotionMs} ms; 8 s outage, default backoff)\n`);
    expect(failoverMs).toBeLessThan(1_500);
    expect((await landedOn(pool)).port).toBe(standby.port);
    expect(pool.getStats().failovers).toBeGreaterThanOrEqual(1);
  }, 40_000);
});

describe('a primary that turns read-only', () => {
  it('is left for the next host once it refuses a write (SQLSTATE 25006)', async () => {
    const a = await PostgresServer.create({ password: TEST_PASSWORD });
    const b = await PostgresServer.create({ password: TEST_PASSWORD });
    await Promise.all([a.start(), b.start()]);
    try {
      const pool = createTestPool({ connectionString: url(a.port, b.port), targetSessionAttrs: 'read-write', min: 1, max: 1 });
      await pool.query('CREATE TEMP TABLE IF NOT EXISTS t (x int)');
      expect((await landedOn(pool)).port).toBe(a.port);
      await sql(a, 'ALTER SYSTEM SET default_transaction_read_only = on');
      await sql(a, 'SELECT pg_reload_conf()');
      await eventually('the write is refused as read-only', async () =>
        (await pool.query('CREATE TABLE IF NOT EXISTS demoted (x int)').then(() => 'ok', (e: Error) => e.message)) !== 'ok');
      await pool.query('CREATE TABLE IF NOT EXISTS demoted (x int)');
      expect((await landedOn(pool)).port).toBe(b.port);
      expect(pool.getStats().failovers).toBe(1);
      await pool.close();
    } finally {
      await Promise.all([a.destroy(), b.destroy()]);
    }
  });
});
