import { PgPool } from 'nestjs-pg-pool';

/**
 * One app instance of the PgBouncer benchmark, run as its own process: a pool of
 * `max: 10` under `CONCURRENCY` workers for `SECONDS`, then it prints its query count.
 */
const pool = new PgPool({ connectionString: process.env.URL, min: 10, max: 10, connection: { application_name: 'bench-instance' } });
const seconds = Number(process.env.SECONDS ?? 5);
const concurrency = Number(process.env.CONCURRENCY ?? 20);
const workload = process.env.WORKLOAD === 'hop' ? 'hop' : 'server-time';

await pool.open({ wait: true });
let count = 0;
const deadline = Date.now() + seconds * 1000;
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (Date.now() < deadline) {
    await pool.withTransaction(async (client) => {
      await client.query('SELECT 1');
      // 'server-time': each transaction holds its server connection 1 ms, so the number of
      // server connections bounds the rate; 'hop': nothing but the statements, so the
      // extra hop through PgBouncer is what is measured.
      if (workload === 'server-time') await client.query('SELECT pg_sleep(0.001)');
      else await client.query('SELECT 2');
    });
    count++;
  }
}));
await pool.close();
console.log(JSON.stringify({ count }));
