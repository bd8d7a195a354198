import { cpus } from 'node:os';
import { overheadBenchmark } from './overhead.bench.js';

/**
 * `npm run bench`: every benchmark, side by side with its peers in one run, as tables.
 * `npm run bench -- overhead queries` runs only those sections.
 */
const sections: Record<string, () => Promise<unknown>> = {
  overhead: overheadBenchmark,
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  console.log(`nestjs-pg-pool benchmarks: Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown cpu'})`);
  for (const [name, run] of Object.entries(sections)) {
    if (wanted.length > 0 && !wanted.includes(name)) continue;
    await run();
  }
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error(error);
  process.exit(1);
});
