import { PoolUsageError } from '../../lib/index.js';
import { appNameOf, backendCount, createTestPool } from '../support/database.js';

describe('withTransaction', () => {
  beforeAll(async () => {
    const pool = createTestPool({ min: 1 });
    await pool.query('CREATE TABLE IF NOT EXISTS tx_spec (id int PRIMARY KEY, note text)');
    await pool.query('TRUNCATE tx_spec');
    await pool.close();
  });

  const count = async (id: number): Promise<number> => {
    const pool = createTestPool({ min: 1 });
    const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tx_spec WHERE id = $1', [id]);
    return rows[0].n;
  };

  it('commits what the callback wrote and returns its result', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const result = await pool.withTransaction(async (client) => {
      await client.query('INSERT INTO tx_spec VALUES (1, $1)', ['committed']);
      return 'done';
    });
    expect(result).toBe('done');
    expect(await count(1)).toBe(1);
  });

  it('rolls back everything when the callback throws, and rethrows its error', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const failure = new Error('business rule broken');
    await expect(pool.withTransaction(async (client) => {
      await client.query('INSERT INTO tx_spec VALUES (2, $1)', ['rolled back']);
      throw failure;
    })).rejects.toBe(failure);
    expect(await count(2)).toBe(0);
    expect(pool.getStats().returnsBad).toBe(0);
    expect(await backendCount(appNameOf(pool), 'idle in transaction')).toBe(0);
  });

  it('rejects when PostgreSQL turned the COMMIT into a rollback after a swallowed error', async () => {
    const pool = createTestPool({ name: 'ledger', min: 1, max: 1 });
    await expect(pool.withTransaction(async (client) => {
      await client.query('INSERT INTO tx_spec VALUES (3, $1)', ['lost']);
      await client.query('SELECT 1/0').catch(() => undefined);
    })).rejects.toThrow(/^pool 'ledger': the transaction was rolled back at COMMIT/);
    expect(await count(3)).toBe(0);
  });

  it('applies isolation level, read only and deferrable', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const settings = await pool.withTransaction(async (client) => (await client.query(
      `SELECT current_setting('transaction_isolation') AS iso, current_setting('transaction_read_only') AS ro,
              current_setting('transaction_deferrable') AS def`)).rows[0],
    { isolationLevel: 'serializable', readOnly: true, deferrable: true });
    expect(settings).toEqual({ iso: 'serializable', ro: 'on', def: 'on' });
    await expect(pool.withTransaction((client) => client.query('INSERT INTO tx_spec VALUES (4, null)'), { readOnly: true }))
      .rejects.toThrow(/read-only transaction/);
  });

  it('refuses an invalid isolation level before touching the database', async () => {
    const pool = createTestPool({ name: 'strict', min: 1, max: 1 });
    const invalid = { isolationLevel: 'serializable; DROP TABLE tx_spec' } as unknown as { isolationLevel: 'serializable' };
    await expect(pool.withTransaction(async () => 1, invalid)).rejects.toThrow(PoolUsageError);
    await expect(pool.withTransaction(async () => 1, invalid)).rejects.toThrow(/^pool 'strict': invalid isolationLevel/);
    expect(pool.getStats().requestsNum).toBe(0);
  });
});
