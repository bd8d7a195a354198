import pg from 'pg';
import { PgPool } from 'nestjs-pg-pool';
import { PostgresServer } from '../test/support/postgres-server.js';

/**
 * `npm run soak`: a long, bounded run (SOAK_MINUTES, default 5) of mixed work on one pool
 * while the server is restarted and backends are terminated at random. Every 10 s it
 * prints the stats and checks the invariants: never more than max connections on
 * either side, no session left idle in transaction, no request unanswered. Exits 1 on a
 * violation. Not part of CI: it takes minutes.
 */
const minutes = Number(process.env.SOAK_MINUTES ?? 5);
const max = 8;
const workers = 48;

async function main(): Promise<void> {
  const server = await PostgresServer.create({ password: 'soak-password' });
  await server.start();
  const admin = (text: string, values: unknown[] = []) => withAdmin(server.url(), text, values);
  const pool = new PgPool({
    connectionString: `${server.url()}?application_name=soak`, min: 2, max, acquireTimeoutMs: 5_000,
    keepaliveIntervalMs: 2_000, maxLifetimeMs: 20_000, maxIdleMs: 5_000, checkOnAcquire: true,
    reconnectDelayMs: 100, reconnectMaxDelayMs: 2_000, leakDetectionMs: 3_000,
    logger: { log: () => undefined, warn: () => undefined, error: (m) => console.error(m) },
  });
  await pool.open({ wait: true });
  await pool.query('CREATE TABLE IF NOT EXISTS soak (id bigserial PRIMARY KEY, v int)');

  const deadline = Date.now() + minutes * 60_000;
  const violations: string[] = [];
  const counts = { ok: 0, failed: 0, restarts: 0, terminations: 0 };
  let running = true;

  const work = async (w: number): Promise<void> => {
    for (let i = 0; running && Date.now() < deadline; i++) {
      try {
        switch ((w + i) % 4) {
          case 0: await pool.query('SELECT pg_sleep(0.002)'); break;
          case 1: await pool.withTransaction(async (c) => { await c.query('INSERT INTO soak (v) VALUES ($1)', [i]); }); break;
          case 2: {
            const c = await pool.acquire();
            try {
              await c.query('BEGIN');
              await c.query('SELECT 1');
            } finally {
              c.release(); // returned inside a transaction on purpose
            }
            break;
          }
          default: await pool.withConnection((c) => c.query('SELECT count(*) FROM soak'));
        }
        counts.ok++;
      } catch {
        counts.failed++;
      }
    }
  };

  const chaos = async (): Promise<void> => {
    while (running && Date.now() < deadline) {
      await sleep(5_000 + Math.random() * 5_000);
      if (!running) break;
      if (Math.random() < 0.3) {
        await server.stop();
        await sleep(500 + Math.random() * 1_500);
        await server.start();
        counts.restarts++;
      } else {
        await admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'soak'").catch(() => undefined);
        counts.terminations++;
      }
    }
  };

  const monitor = async (): Promise<void> => {
    while (running && Date.now() < deadline) {
      await sleep(10_000);
      const stats = pool.getStats();
      if (pool.totalCount > max) violations.push(`pool holds ${pool.totalCount} > ${max}`);
      const rows = await admin("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'soak'").catch(() => undefined);
      const backends = rows?.[0]?.n as number | undefined;
      if (backends !== undefined && backends > max) violations.push(`server shows ${backends} > ${max} backends`);
      console.log(JSON.stringify({ t: new Date().toISOString(), ...counts, backends, stats }));
    }
  };

  const started = Date.now();
  await Promise.all([...Array.from({ length: workers }, (_, w) => work(w)), chaos(), monitor()]);
  running = false;
  await sleep(3_000);
  const stuck = await admin("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'soak' AND state LIKE 'idle in transaction%'");
  if ((stuck[0].n as number) > 0) violations.push(`${stuck[0].n} sessions idle in transaction after the run`);
  if (pool.checkedOutCount > 0) violations.push(`${pool.checkedOutCount} clients still checked out`);
  await pool.close();
  await server.destroy();
  console.log(`soak: ${((Date.now() - started) / 60_000).toFixed(1)} min, ${counts.ok} ok, ${counts.failed} failed during faults, ` +
    `${counts.restarts} restarts, ${counts.terminations} mass terminations; violations: ${violations.length === 0 ? 'none' : violations.join('; ')}`);
  process.exit(violations.length === 0 ? 0 : 1);
}

async function withAdmin(url: string, text: string, values: unknown[]): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client(url);
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
