import { cpus } from 'node:os';
import { burstBenchmark } from './burst.bench.js';
import { httpBenchmark } from './http.bench.js';
import { memoryBenchmark } from './memory.bench.js';
import { overheadBenchmark } from './overhead.bench.js';
import { pgbouncerBenchmark } from './pgbouncer.bench.js';
import { queriesBenchmark } from './queries.bench.js';
import { tenantsBenchmark } from './tenants.bench.js';
import { resetBenchmark } from './reset.bench.js';
import { benchDatabase } from './server.js';

/**
 * `npm run bench`: every benchmark, side by side with its peers in one run, as tables.
 * `npm run bench -- overhead queries` runs only those sections. The database is a
 * throw-away embedded PostgreSQL, or `BENCH_PG_URL`.
 */
const sections: Record<string, (url: string) => Promise<unknown>> = {
  overhead: () => overheadBenchmark(),
  queries: queriesBenchmark,
  burst: burstBenchmark,
  http: httpBenchmark,
  memory: memoryBenchmark,
  pgbouncer: pgbouncerBenchmark,
  tenants: tenantsBenchmark,
  reset: resetBenchmark,
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  console.log(`nestjs-pg-pool benchmarks: Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown cpu'})`);
  const database = await benchDatabase();
  try {
    for (const [name, run] of Object.entries(sections)) {
      if (wanted.length > 0 && !wanted.includes(name)) continue;
      await run(database.url);
    }
  } finally {
    await database.stop();
  }
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error(error);
  process.exit(1);
});
