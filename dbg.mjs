import { PgPool } from '/work/main/dist/index.js';
import pg from 'pg';
import postgres from 'postgres';
const url = process.env.URL;
const setup = new pg.Client(url); await setup.connect();
await setup.query('CREATE TABLE IF NOT EXISTS bench_rows (id int PRIMARY KEY, name text, score float8)');
await setup.query("INSERT INTO bench_rows SELECT i, 'name ' || i, random() FROM generate_series(1, 1000) i ON CONFLICT DO NOTHING"); await setup.end();
async function bench(name, q, conc, n = 20000) {
  const per = Math.ceil(n / conc); const t = performance.now();
  await Promise.all(Array.from({ length: conc }, async (_, w) => { for (let i = 0; i < per; i++) await q((w*per+i)%1000+1); }));
  const s = (performance.now() - t) / 1000; return Math.round(per * conc / s);
}
const m = new PgPool({ connectionString: url, min: 10, max: 10, multiplex: true });
const p = new PgPool({ connectionString: url, min: 10, max: 10 });
const g = new pg.Pool({ connectionString: url, max: 10 });
const sql = postgres(url, { max: 10 });
const subjects = { mux: m, PgPool: p, 'pg.Pool': g };
for (const kind of ['one', 'row']) for (const conc of [1, 16, 256]) {
  const out = {};
  for (const [n, pool] of Object.entries(subjects)) out[n] = await bench(n, kind === 'one' ? () => pool.query('SELECT 1') : (id) => pool.query('SELECT id, name, score FROM bench_rows WHERE id = $1', [id]), conc);
  out['pgjs'] = await bench('pgjs', kind === 'one' ? () => sql`SELECT 1` : (id) => sql`SELECT id, name, score FROM bench_rows WHERE id = ${id}`, conc);
  console.log(kind, conc, JSON.stringify(out), 'mux/pg', (out.mux / out['pg.Pool']).toFixed(2), 'mux/pgjs', (out.mux / out.pgjs).toFixed(2));
}
await Promise.all([m.end(), p.end(), g.end(), sql.end()]);
