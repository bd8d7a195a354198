import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { integer, pgTable, text } from 'drizzle-orm/pg-core';
import { Kysely, PostgresDialect, type Generated } from 'kysely';
import { PoolUsageError } from '../../lib/index.js';
import { adminQuery, createTestPool } from '../support/database.js';

interface Database {
  eco_items: { id: Generated<number>; name: string; qty: number };
}

const ecoItems = pgTable('eco_items', { id: integer('id').primaryKey().generatedAlwaysAsIdentity(), name: text('name').notNull(), qty: integer('qty').notNull() });

describe('PgPool as a drop-in for query builders and ORMs', () => {
  beforeAll(async () => {
    await adminQuery('CREATE TABLE IF NOT EXISTS eco_items (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, qty int NOT NULL CHECK (qty >= 0))');
    await adminQuery('TRUNCATE eco_items');
  });

  it("Kysely's PostgresDialect: queries, a committed and a rolled-back transaction, errors, with the pool's checks in force", async () => {
    const pool = createTestPool({ min: 1, max: 2 });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    await db.insertInto('eco_items').values({ name: 'kysely-a', qty: 1 }).execute();
    await db.transaction().execute(async (tx) => {
      await tx.insertInto('eco_items').values({ name: 'kysely-b', qty: 2 }).execute();
    });
    await expect(db.transaction().execute(async (tx) => {
      await tx.insertInto('eco_items').values({ name: 'kysely-c', qty: 3 }).execute();
      throw new Error('abort');
    })).rejects.toThrow('abort');
    await expect(db.insertInto('eco_items').values({ name: 'kysely-d', qty: -1 }).execute()).rejects.toThrow(/violates check constraint/);
    const names = (await db.selectFrom('eco_items').select('name').where('name', 'like', 'kysely-%').orderBy('name').execute()).map((r) => r.name);
    expect(names).toEqual(['kysely-a', 'kysely-b']);
    expect(pool.getStats()).toMatchObject({ requestsErrors: 0, returnsBad: 0 });
    expect(pool.getStats().requestsNum).toBeGreaterThanOrEqual(5);
    await db.destroy(); // calls pool.end()
    expect(pool.state).toBe('closed');
  });

  it("drizzle's node-postgres driver: queries, transactions on one connection, errors", async () => {
    const pool = createTestPool({ min: 1, max: 2 });
    // drizzle recognises a pool by its class name, which PgPool's contains; its types take a PgPool as a pg.Pool.
    const db = drizzle({ client: pool });
    await db.insert(ecoItems).values({ name: 'drizzle-a', qty: 1 });
    await db.transaction(async (tx) => {
      await tx.insert(ecoItems).values({ name: 'drizzle-b', qty: 2 });
      const [{ inTx }] = (await tx.execute(sql`SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS "inTx"`)).rows as Array<{ inTx: boolean }>;
      expect(inTx).toBe(true);
    });
    await expect(db.transaction(async (tx) => {
      await tx.insert(ecoItems).values({ name: 'drizzle-c', qty: 3 });
      tx.rollback();
    })).rejects.toThrow(/Rollback/);
    await expect(db.insert(ecoItems).values({ name: 'drizzle-d', qty: -1 })).rejects.toThrow();
    const rows = await db.select({ name: ecoItems.name }).from(ecoItems).where(eq(ecoItems.name, 'drizzle-b'));
    expect(rows).toEqual([{ name: 'drizzle-b' }]);
    const all = await db.select({ name: ecoItems.name }).from(ecoItems);
    expect(all.map((r) => r.name).filter((n) => n.startsWith('drizzle-')).sort()).toEqual(['drizzle-a', 'drizzle-b']);
    expect(pool.checkedOutCount).toBe(0);
    expect(pool.getStats().returnsBad).toBe(0);
  });

  it('keeps its guard under an ORM: a released client refuses queries', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const client = await pool.connect();
    client.release();
    expect(() => client.query('SELECT 1')).toThrow(PoolUsageError);
  });
});
