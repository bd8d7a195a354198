import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PgBouncer } from '../test/support/pgbouncer.js';
import { formatNumber, printTable } from './measure.js';

const INSTANCES = 4;
const SECONDS = 5;

/** Runs INSTANCES app processes against `url` at once; returns transactions/s and the peak backend count. */
type Workload = 'server-time' | 'hop';

async function run(url: string, adminUrl: string, workload: Workload): Promise<{ tps: number; peakBackends: number }> {
  const admin = new pg.Client(adminUrl);
  await admin.connect();
  let peakBackends = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const { rows } = await admin.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND application_name = 'bench-instance'");
      peakBackends = Math.max(peakBackends, rows[0].n);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  const worker = fileURLToPath(new URL('./load-worker.js', import.meta.url));
  const counts = await Promise.all(Array.from({ length: INSTANCES }, () => new Promise<number>((resolve, reject) => {
    const child = spawn(process.execPath, [worker], { env: { ...process.env, URL: url, SECONDS: String(SECONDS), WORKLOAD: workload }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.once('exit', (code) => (code === 0 ? resolve((JSON.parse(out.trim()) as { count: number }).count) : reject(new Error(`instance exited ${code}`))));
  })));
  sampling = false;
  await sampler;
  await admin.end();
  return { tps: counts.reduce((a, b) => a + b, 0) / SECONDS, peakBackends };
}

export async function pgbouncerBenchmark(url: string): Promise<Record<string, number>> {
  const target = new URL(url);
  const bouncer = await PgBouncer.start({
    host: target.hostname, port: Number(target.port), user: decodeURIComponent(target.username),
    password: decodeURIComponent(target.password), database: target.pathname.slice(1), poolSize: 10,
  });
  try {
    const rows: string[][] = [];
    const figures: Record<string, number> = {};
    // Both direct runs first: PgBouncer keeps its server connections open afterwards,
    // and they would count as backends of a later direct run.
    const workloads = ['server-time', 'hop'] as const;
    const directRuns = [];
    for (const workload of workloads) directRuns.push(await run(url, url, workload));
    for (const [i, workload] of workloads.entries()) {
      const direct = directRuns[i];
      const viaBouncer = await run(bouncer.url(target.pathname.slice(1)), url, workload);
      const what = workload === 'server-time' ? 'SELECT 1; pg_sleep(1 ms)' : 'SELECT 1; SELECT 2';
      rows.push([what, 'direct to PostgreSQL', formatNumber(direct.tps), String(direct.peakBackends)]);
      rows.push([what, 'through PgBouncer', formatNumber(viaBouncer.tps), String(viaBouncer.peakBackends)]);
      figures[`${workload}:directTps`] = direct.tps;
      figures[`${workload}:bouncerTps`] = viaBouncer.tps;
    }
    printTable(`6. ${INSTANCES} app processes x max 10, ${SECONDS} s of 2-statement transactions each at concurrency 20: direct vs PgBouncer (transaction mode, 10 server connections)`,
      ['transaction', 'route', 'transactions/s', 'server backends (peak)'], rows);
    console.log('   With 1 ms of server time per transaction, 10 server connections bound the rate against 40 direct ones;');
    console.log('   with none, the difference is the hop through PgBouncer itself.');
    return figures;
  } finally {
    await bouncer.stop();
  }
}
