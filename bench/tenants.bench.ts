import pg from 'pg';
import { TenantPools } from 'nestjs-pg-pool';
import { formatNumber, interleaved, median, percentile, printTable } from './measure.js';

const TENANTS = 200;
const BUDGET = 20;
const CONCURRENCY = 64;
const DURATION_MS = 4_000;
const ROUNDS = 3;
const APP_NAME = 'bench-tenants';

type Subject = 'TenantPools' | 'Map<tenant, pg.Pool>';
type Traffic = 'uniform' | 'skewed';

interface Outcome {
  requestsPerSecond: number;
  p99Ms: number;
  peakConnections: number;
  errors: number;
}

const databaseOf = (tenant: number): string => `bench_tenant_${tenant}`;

function urlOf(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  url.searchParams.set('application_name', APP_NAME);
  return url.toString();
}

async function createDatabases(base: string): Promise<void> {
  const admin = new pg.Client(base);
  await admin.connect();
  try {
    const { rows } = await admin.query<{ n: string }>("SELECT count(*) AS n FROM pg_database WHERE datname LIKE 'bench_tenant_%'");
    if (Number(rows[0].n) >= TENANTS) return;
    for (let tenant = 0; tenant < TENANTS; tenant++) {
      await admin.query(`DROP DATABASE IF EXISTS ${databaseOf(tenant)}`);
      await admin.query(`CREATE DATABASE ${databaseOf(tenant)}`);
    }
  } finally {
    await admin.end();
  }
}

/** The hand-rolled way: a pg.Pool per tenant, made on first use, never closed. */
class PoolPerTenant {
  private readonly pools = new Map<number, pg.Pool>();
  constructor(private readonly base: string) {}

  get(tenant: number): pg.Pool {
    let pool = this.pools.get(tenant);
    if (!pool) {
      pool = new pg.Pool({ connectionString: urlOf(this.base, databaseOf(tenant)) });
      pool.on('error', () => undefined);
      this.pools.set(tenant, pool);
    }
    return pool;
  }

  async end(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.end()));
  }
}

/** 64 clients for 4 s, each request a lookup in a random tenant's database. */
async function run(subject: Subject, traffic: Traffic, base: string, round: number): Promise<Outcome> {
  let state = 1_000 + round;
  const random = (n: number): number => {
    state = (state * 48_271) % 2_147_483_647;
    return Math.floor((state / 2_147_483_647) * n);
  };
  // Skewed: four requests in five go to 20 busy tenants, the rest to the other 180.
  const pick = (): number => (traffic === 'uniform' || random(5) === 0 ? random(TENANTS) : random(20));

  const tenants = subject === 'TenantPools'
    ? new TenantPools({
      resolve: (id) => ({ connectionString: urlOf(base, databaseOf(Number(id))), max: 5, acquireTimeoutMs: 60_000 }),
      maxPools: 100,
      connectionBudget: BUDGET,
    })
    : undefined;
  const map = subject === 'TenantPools' ? undefined : new PoolPerTenant(base);
  const query = async (tenant: number): Promise<void> => {
    const pool: { query(text: string): Promise<unknown> } = tenants ? await tenants.get(String(tenant)) : map!.get(tenant);
    await pool.query('SELECT current_database()');
  };

  const monitor = new pg.Client(base);
  await monitor.connect();
  let peakConnections = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const { rows } = await monitor.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [APP_NAME]);
      peakConnections = Math.max(peakConnections, Number(rows[0].n));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();

  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + DURATION_MS;
  const startedAt = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < deadline) {
      const begun = performance.now();
      try {
        await query(pick());
        latencies.push(performance.now() - begun);
      } catch {
        errors++;
      }
    }
  }));
  const elapsedMs = performance.now() - startedAt;
  sampling = false;
  await sampler;
  await monitor.end();
  await (tenants ? tenants.close() : map!.end());
  latencies.sort((a, b) => a - b);
  return { requestsPerSecond: (latencies.length / elapsedMs) * 1_000, p99Ms: percentile(latencies, 99), peakConnections, errors };
}

/**
 * A database per tenant: 200 tenant databases, 64 concurrent clients, TenantPools with a
 * budget of 20 connections against a hand-rolled Map<tenant, pg.Pool> (pg.Pool's
 * defaults: max 10, idle 10 s). Throughput, p99 and the peak of server connections.
 */
export async function tenantsBenchmark(url: string): Promise<Record<string, number>> {
  await createDatabases(url);
  const subjects = ['TenantPools', 'Map<tenant, pg.Pool>'] as const;
  const rows: string[][] = [];
  const figures: Record<string, number> = {};
  for (const traffic of ['skewed', 'uniform'] as const) {
    const results = await interleaved(subjects, ROUNDS, (subject, round) => run(subject, traffic, url, round));
    for (const subject of subjects) {
      const rs = results[subject];
      const rps = median(rs.map((r) => r.requestsPerSecond));
      figures[`${traffic}:${subject}`] = rps;
      rows.push([`${traffic}: ${subject}`, formatNumber(rps), formatNumber(median(rs.map((r) => r.p99Ms)), 1),
        formatNumber(Math.max(...rs.map((r) => r.peakConnections))), formatNumber(rs.reduce((sum, r) => sum + r.errors, 0))]);
    }
    const ratio = figures[`${traffic}:TenantPools`] / figures[`${traffic}:Map<tenant, pg.Pool>`];
    rows.push([`${traffic}: ratio`, `${ratio.toFixed(2)}x`, '', '', '']);
  }
  printTable(`7. A database per tenant (Node ${process.version}): ${TENANTS} tenants, ${CONCURRENCY} clients, TenantPools budget ${BUDGET} ` +
    `(max 5 per tenant, maxPools 100) vs Map<tenant, pg.Pool> (pg.Pool defaults); skewed = 80% of requests on 20 tenants; ` +
    `median of ${ROUNDS} interleaved rounds of ${DURATION_MS / 1000} s`,
  ['subject', 'requests/s', 'p99 (ms)', 'server connections (peak)', 'errors'], rows);
  return figures;
}
