import { PgPool } from '/work/main/dist/index.js';
import pg from 'pg';
import postgres from 'postgres';
const url = process.env.URL;
async function bench(q, conc, n = 30000) {
  const per = Math.ceil(n / conc); const t = performance.now(); const lat = [];
  await Promise.all(Array.from({ length: conc }, async (_, w) => { for (let i = 0; i < per; i++) { const s = performance.now(); await q((w*per+i)%1000+1); lat.push(performance.now()-s);} }));
  const sec = (performance.now() - t) / 1000; lat.sort((a,b)=>a-b); return [Math.round(per * conc / sec), lat[Math.floor(lat.length*0.99)].toFixed(1)];
}
const subjects = { d16: new PgPool({ connectionString: url, min: 10, max: 10, multiplex: { depth: 16 } }),
  d64: new PgPool({ connectionString: url, min: 10, max: 10, multiplex: { depth: 64 } }),
  d256: new PgPool({ connectionString: url, min: 10, max: 10, multiplex: { depth: 256 } }),
  pg: new pg.Pool({ connectionString: url, max: 10 }) };
const sql = postgres(url, { max: 10 });
for (const kind of ['one', 'row']) for (const conc of [16, 256]) {
  const out = {};
  for (let r = 0; r < 2; r++) for (const [n, pool] of Object.entries(subjects)) out[n] = await bench(kind === 'one' ? () => pool.query('SELECT 1') : (id) => pool.query('SELECT id, name, score FROM bench_rows WHERE id = $1', [id]), conc);
  out['pgjs'] = await bench(kind === 'one' ? () => sql`SELECT 1` : (id) => sql`SELECT id, name, score FROM bench_rows WHERE id = ${id}`, conc);
  console.log(kind, conc, JSON.stringify(out));
}
await Promise.all([...Object.values(subjects).map(p => p.end()), sql.end()]);
