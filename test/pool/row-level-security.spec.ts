import { parseIntoClientConfig } from 'pg-connection-string';
import { PgPool, PoolUsageError } from '../../lib/index.js';
import { adminQuery, createTestPool, recordingLogger, testUrl } from '../support/database.js';
import { PgBouncer } from '../support/pgbouncer.js';
import { seededRandom } from '../support/random.js';

/**
 * Row-level security keyed on a transaction-local setting and a role, with 50 tenants:
 * the test's own table, policies and roles, on the real server.
 */
const TABLE = `rls_notes_${process.pid}`;
const READER = `rls_reader_${process.pid}`;
const WRITER = `rls_writer_${process.pid}`;
const TENANTS = 50;

beforeAll(async () => {
  await adminQuery(`CREATE TABLE ${TABLE} (id serial PRIMARY KEY, tenant int NOT NULL, body text NOT NULL)`);
  await adminQuery(`INSERT INTO ${TABLE} (tenant, body) SELECT t, 'note ' || t FROM generate_series(1, ${TENANTS}) t, generate_series(1, 3)`);
  await adminQuery(`ALTER TABLE ${TABLE} ENABLE ROW LEVEL SECURITY`);
  await adminQuery(`CREATE POLICY tenant_rows ON ${TABLE} USING (tenant = nullif(current_setting('app.tenant_id', true), '')::int)`);
  for (const role of [READER, WRITER]) {
    await adminQuery(`CREATE ROLE ${role} NOLOGIN`);
    await adminQuery(`GRANT ${role} TO CURRENT_USER`);
  }
  await adminQuery(`GRANT SELECT ON ${TABLE} TO ${READER}, ${WRITER}`);
  await adminQuery(`GRANT INSERT ON ${TABLE} TO ${WRITER}`);
  await adminQuery(`GRANT USAGE ON SEQUENCE ${TABLE}_id_seq TO ${WRITER}`);
});

afterAll(async () => {
  await adminQuery(`DROP TABLE IF EXISTS ${TABLE}`);
  for (const role of [READER, WRITER]) await adminQuery(`DROP ROLE IF EXISTS ${role}`);
});

/**
 * What `count` server sessions show now: their tenant setting and their role. Each client
 * holds a transaction open while it looks, so behind PgBouncer each sits on a server
 * connection of its own and all of them are seen.
 */
async function sessionsOf(pool: PgPool, count: number): Promise<Array<{ tenant: string | null; role: string; pid: number }>> {
  const clients = await Promise.all(Array.from({ length: count }, () => pool.acquire()));
  try {
    return await Promise.all(clients.map(async (client) => {
      await client.query('BEGIN');
      const { rows } = await client.query<{ tenant: string | null; role: string; pid: number }>(
        "SELECT nullif(current_setting('app.tenant_id', true), '') AS tenant, current_user AS role, pg_backend_pid() AS pid");
      await client.query('ROLLBACK');
      return rows[0];
    }));
  } finally {
    clients.forEach((client) => client.release());
  }
}

/**
 * 200 requests for random tenants, 8 at a time, each in a transaction with its tenant and
 * role as transaction-local settings; some throw, time out or are abandoned mid-query,
 * some try to write another tenant's row. Asserts that none read or wrote another's.
 */
async function tenantTraffic(pool: PgPool): Promise<void> {
  const random = seededRandom(19);
  const wrong: string[] = [];
  const outcomes = { served: 0, thrown: 0, timedOut: 0, abandoned: 0, refused: 0 };
  const request = async (): Promise<void> => {
    const tenant = 1 + random(TENANTS);
    const kind = random(10);
    const role = kind < 5 ? READER : WRITER;
    try {
      await pool.withTransaction(async (client) => {
        const { rows } = await client.query<{ tenant: number }>(`SELECT tenant FROM ${TABLE}`);
        if (rows.length === 0 || rows.some((row) => row.tenant !== tenant)) wrong.push(`tenant ${tenant} read ${rows.map((r) => r.tenant)}`);
        if (role === WRITER) {
          await client.query(`INSERT INTO ${TABLE} (tenant, body) VALUES ($1, 'written')`, [tenant]);
          if (kind === 9) {
            // Writing another tenant's row: refused by the policy, the transaction rolled back.
            await client.query(`INSERT INTO ${TABLE} (tenant, body) VALUES ($1, 'intruder')`, [tenant === 1 ? 2 : 1]);
          }
        }
        if (kind === 6) throw new Error('handler failed');
        if (kind === 7) await client.query("SET LOCAL statement_timeout = '20ms'; SELECT pg_sleep(1)");
        if (kind === 8) {
          const sleeping = client.query('SELECT pg_sleep(1)');
          await pool.abandon(client);
          await sleeping;
        }
      }, { settings: { 'app.tenant_id': tenant, role } });
      outcomes.served++;
    } catch (error) {
      const message = (error as Error).message;
      if (message === 'handler failed') outcomes.thrown++;
      else if (/statement timeout/.test(message)) outcomes.timedOut++;
      else if (/cancel/.test(message) || error instanceof PoolUsageError) outcomes.abandoned++;
      else if (/row-level security/.test(message)) outcomes.refused++;
      else throw error;
    }
  };
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let i = 0; i < 25; i++) await request();
  }));

  expect(wrong).toEqual([]);
  expect(outcomes.served + outcomes.thrown + outcomes.timedOut + outcomes.abandoned + outcomes.refused).toBe(200);
  for (const count of Object.values(outcomes)) expect(count).toBeGreaterThan(0);
  // Nothing was written for a tenant by another: every row written carries its tenant.
  const intruders = await adminQuery<{ n: string }>(`SELECT count(*) AS n FROM ${TABLE} WHERE body = 'intruder'`);
  expect(Number(intruders[0].n)).toBe(0);
}

describe('row-level security per request', () => {
  it('never lets a request read or write another tenant, through throws, timeouts and abandoned work', async () => {
    const pool = createTestPool({ min: 4, max: 4 });
    await tenantTraffic(pool);
    // After release, no connection keeps a tenant or a role.
    const sessions = await sessionsOf(pool, 4);
    expect(sessions.every((s) => s.tenant === null && s.role !== READER && s.role !== WRITER)).toBe(true);
  });

  it('holds through PgBouncer in transaction mode, where server connections change hands between transactions', async () => {
    const config = parseIntoClientConfig(testUrl());
    const bouncer = await PgBouncer.start({
      host: String(config.host), port: Number(config.port), user: String(config.user),
      password: String(config.password), database: String(config.database), poolSize: 3,
    });
    // More client connections than server ones: tenants' transactions share server sessions.
    const pool = new PgPool({ connectionString: bouncer.url('postgres'), min: 0, max: 8, logger: recordingLogger() });
    try {
      await tenantTraffic(pool);
      const sessions = await sessionsOf(pool, 3);
      expect(new Set(sessions.map((s) => s.pid)).size).toBe(3);
      expect(sessions.every((s) => s.tenant === null && s.role !== READER && s.role !== WRITER)).toBe(true);
    } finally {
      await pool.close();
      await bouncer.stop();
    }
  });

  it("resets a borrower's session-level SET and SET ROLE before the next borrower (resetOnReturn 'auto')", async () => {
    const pool = createTestPool({ min: 1, max: 1, configure: async (client) => { await client.query("SET application_name = 'configured'"); } });
    await pool.withConnection(async (client) => {
      await client.query("SET app.tenant_id = '7'");
      await client.query(`SET ROLE ${READER}`);
      await client.query("SELECT set_config('search_path', 'nowhere', false)");
    });
    const next = await pool.withConnection(async (client) => (await client.query<{ tenant: string | null; role: string; path: string; app: string }>(
      "SELECT nullif(current_setting('app.tenant_id', true), '') AS tenant, current_user AS role, current_setting('search_path') AS path, " +
      "current_setting('application_name') AS app")).rows[0]);
    expect(next).toEqual({ tenant: null, role: expect.not.stringMatching(READER), path: '"$user", public', app: 'configured' });
  });

  it("keeps them with resetOnReturn 'never', and resets after every checkout with 'always'", async () => {
    const never = createTestPool({ min: 1, max: 1, resetOnReturn: 'never' });
    await never.withConnection((client) => client.query("SET app.tenant_id = '7'"));
    expect((await never.query("SELECT current_setting('app.tenant_id', true) AS t")).rows[0].t).toBe('7');
    const always = createTestPool({ min: 1, max: 1, resetOnReturn: 'always' });
    // Changed out of the pool's sight, inside a function: only 'always' catches it.
    await always.withConnection((client) => client.query(
      "DO $$ BEGIN PERFORM set_config('app.tenant_id', '8', false); END $$"));
    expect((await always.query("SELECT nullif(current_setting('app.tenant_id', true), '') AS t")).rows[0].t).toBeNull();
    expect(() => createTestPool({ resetOnReturn: 'sometimes' as 'auto' })).toThrow(/resetOnReturn/);
  });

  it('refuses a setting name that is not one, before the transaction begins', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const refused = await pool.withTransaction(async () => 1, { settings: { "app.x'; DROP TABLE x; --": '1' } }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PoolUsageError);
    expect((refused as Error).message).toMatch(/invalid setting name/);
    // A value is a parameter: quotes in it are data, not SQL.
    const value = await pool.withTransaction(async (client) => (await client.query("SELECT current_setting('app.note') AS v")).rows[0].v,
      { settings: { 'app.note': "it's'; DROP TABLE x; --" } });
    expect(value).toBe("it's'; DROP TABLE x; --");
  });
});
