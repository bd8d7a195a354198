import type { PgPool } from 'nestjs-pg-pool';

/** The sample's tables; idempotent, run at start-up. */
export async function createSchema(pool: PgPool): Promise<void> {
  await pool.withTransaction(async (client) => {
    // Serialise concurrent start-ups (e2e workers) on the same database.
    await client.query('SELECT pg_advisory_xact_lock(4242)');
    await client.query(`CREATE TABLE IF NOT EXISTS notes (
      id serial PRIMARY KEY,
      title text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now())`);
    await client.query(`CREATE TABLE IF NOT EXISTS note_tags (
      note_id int NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
      tag text NOT NULL CHECK (tag ~ '^[a-z0-9-]+$'),
      PRIMARY KEY (note_id, tag))`);
  });
}
