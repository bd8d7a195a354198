import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createBenchRows } from './server.js';
import { formatNumber, interleaved, median, printTable, ratio } from './measure.js';

const DURATION_S = 3;
const CONNECTIONS = 32;
/** Rounds per comparison; each round runs every route of the comparison once, back to back. */
const ROUNDS = 7;

/**
 * One table: routes compared with the first (`pg.Pool.query` by hand), on one server.
 * This machine's throughput drifts by tens of percent within a minute, so each round runs
 * the comparison's routes back to back (in rotated order) and each ratio is taken within
 * its round; a table shows the median of those ratios, and the medians of requests/s and p99.
 */
interface Comparison {
  title: string;
  /** Route paths prefixed by the server they are asked of (`fastify:`, `unscoped:`), or not (Express). */
  routes: Array<{ label: string; route: string }>;
  note?: string;
}

/** What a promise costs before and after the first AsyncLocalStorage scope, in a fresh process. */
async function promiseCost(): Promise<{ before: number; after: number }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./promise-cost.js', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the promise-cost benchmark exited (${code})`);
  return JSON.parse(output) as { before: number; after: number };
}

/** Starts bench/http-app in its own process, so the load generator does not share its event loop. */
async function startServer(url: string, platform = 'express'): Promise<{ port: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./http-app.js', import.meta.url))],
    { env: { ...process.env, URL: url, PORT: '0', PLATFORM: platform }, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      const match = /ready (\d+)/.exec(chunk.toString());
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`the benchmark server exited (${code})`)));
  });
  return {
    port,
    stop: () => new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

export async function httpBenchmark(url: string): Promise<Record<string, number>> {
  await createBenchRows(url);
  const server = await startServer(url);
  const fastify = await startServer(url, 'fastify');
  // The same Express app, but only its routes without a currentConnection() scope are
  // asked of it: a process in which no AsyncLocalStorage scope is ever opened.
  const unscoped = await startServer(url);
  const servers: Record<string, { port: number }> = { fastify, unscoped };
  try {
    const load = (route: string, seconds: number) => {
      const [prefix, path] = route.includes(':') ? route.split(':') : ['', route];
      return autocannon({ url: `http://127.0.0.1:${(servers[prefix] ?? server).port}/${path}`, connections: CONNECTIONS, duration: seconds });
    };
    const node = process.version;
    const comparisons: Comparison[] = [
      { title: `4. Through Nest (Express, Node ${node}): GET with one SELECT`, routes: [
        { label: 'pg.Pool.query by hand', route: 'by-hand' },
        { label: '@UseConnection + @Conn (PgPool)', route: 'use-connection' },
        { label: 'pg.Pool.query by hand + a no-op interceptor', route: 'by-hand-intercepted' },
      ], note: 'The no-op interceptor row is the floor for any interceptor: Nest\'s interceptor pipeline alone.' },
      { title: `4b. Through Nest (Express, Node ${node}): 20 independent row lookups per request (Promise.all)`, routes: [
        { label: 'pg.Pool.query by hand', route: 'queries-by-hand' },
        { label: 'PgPool, multiplex: true', route: 'queries-multiplexed' },
      ] },
      { title: `4c. Through Nest on Fastify (Node ${node}): GET with one SELECT`, routes: [
        { label: 'pg.Pool.query by hand', route: 'fastify:by-hand' },
        { label: '@UseConnection + @Conn (PgPool)', route: 'fastify:use-connection' },
      ] },
      { title: `4d. Through Nest (Express, Node ${node}), a process in which no AsyncLocalStorage scope is ever opened`, routes: [
        { label: 'pg.Pool.query by hand', route: 'unscoped:by-hand' },
        { label: '@UseConnection({ currentConnection: false }) + @Conn', route: 'unscoped:use-connection-unscoped' },
      ] },
    ];
    for (const { routes } of comparisons) for (const { route } of routes) await load(route, 3); // warm-up: JIT, pools at size
    /** Each route's median per-round ratio to its comparison's first route. */
    const ratioOf: Record<string, number> = {};
    for (const { title, routes, note } of comparisons) {
      const results = await interleaved(routes.map((r) => r.route), ROUNDS, async (route) => {
        const result = await load(route, DURATION_S);
        if (result.non2xx > 0 || result.errors > 0) throw new Error(`${route}: ${result.non2xx} non-2xx, ${result.errors} errors`);
        return { rps: result.requests.average, p99: result.latency.p99 };
      });
      const base = results[routes[0].route];
      const rows = routes.map(({ label, route }) => {
        const ratios = results[route].map((r, round) => r.rps / base[round].rps);
        ratioOf[route] = median(ratios);
        const spread = `${Math.min(...ratios).toFixed(2)} to ${Math.max(...ratios).toFixed(2)}`;
        return [label, formatNumber(median(results[route].map((r) => r.rps))), formatNumber(median(results[route].map((r) => r.p99))),
          `${ratioOf[route].toFixed(2)}x`, spread];
      });
      printTable(`${title}, autocannon ${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION_S} s, medians`,
        ['route', 'requests/s', 'p99 latency (ms)', 'vs by hand', 'per-round ratios'], rows);
      if (note) console.log(`   ${note}`);
    }
    const cost = await promiseCost();
    printTable(`4e. What a promise costs a process before and after its first AsyncLocalStorage scope (Node ${process.version}), best of 3 x 1,000,000`,
      ['', 'ns per then + await', 'vs before'], [
        ['before any scope', formatNumber(cost.before), '1.00x'],
        ['after one scope, outside it', formatNumber(cost.after), ratio(cost.after, cost.before)],
      ]);
    console.log('   Table 4 shares one process between @UseConnection and the hand-written route, so the second pays for the');
    console.log('   first one\'s scope too: on Node 20 and 22, table 4d is the comparison with an app that has no scope at all.');
    return {
      httpRatio: ratioOf['use-connection'], interceptorFloor: ratioOf['by-hand-intercepted'],
      multiplexedQueries: ratioOf['queries-multiplexed'], fastifyRatio: ratioOf['fastify:use-connection'],
      unscopedRatio: ratioOf['unscoped:use-connection-unscoped'], promiseCostRatio: cost.after / cost.before,
    };
  } finally {
    await Promise.all([server.stop(), fastify.stop(), unscoped.stop()]);
  }
}
