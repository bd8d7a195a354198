import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createBenchRows } from './server.js';
import { formatNumber, interleaved, median, printTable, ratio } from './measure.js';

const DURATION_S = 5;
const CONNECTIONS = 32;
const ROUNDS = 3;
const ROUTES = ['use-connection', 'by-hand', 'by-hand-intercepted', 'queries-multiplexed', 'queries-by-hand',
  'fastify:use-connection', 'fastify:by-hand', 'unscoped:use-connection-unscoped', 'unscoped:by-hand'] as const;

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
    for (const route of ROUTES) await load(route, 3); // warm-up: JIT, pools at size
    const results = await interleaved(ROUTES, ROUNDS, async (route) => {
      const result = await load(route, DURATION_S);
      if (result.non2xx > 0 || result.errors > 0) throw new Error(`${route}: ${result.non2xx} non-2xx, ${result.errors} errors`);
      return { rps: result.requests.average, p99: result.latency.p99 };
    });
    const ours = median(results['use-connection'].map((r) => r.rps));
    const hand = median(results['by-hand'].map((r) => r.rps));
    const intercepted = median(results['by-hand-intercepted'].map((r) => r.rps));
    printTable(`4. Through Nest (Express, Node ${process.version}): GET with one SELECT, autocannon ${CONNECTIONS} connections, ${DURATION_S} s, median of ${ROUNDS} interleaved rounds`,
      ['route', 'requests/s', 'p99 latency (ms)', 'vs by hand'], [
        ['@UseConnection + @Conn (PgPool)', formatNumber(ours), formatNumber(median(results['use-connection'].map((r) => r.p99))), ratio(ours, hand)],
        ['pg.Pool.query by hand', formatNumber(hand), formatNumber(median(results['by-hand'].map((r) => r.p99))), '1.00x'],
        ['pg.Pool.query by hand + a no-op interceptor', formatNumber(intercepted),
          formatNumber(median(results['by-hand-intercepted'].map((r) => r.p99))), ratio(intercepted, hand)],
      ]);
    console.log('   The no-op interceptor row is the floor for any interceptor: Nest\'s interceptor pipeline alone.');
    const muxed = median(results['queries-multiplexed'].map((r) => r.rps));
    const handQueries = median(results['queries-by-hand'].map((r) => r.rps));
    printTable(`4b. Through Nest: 20 independent row lookups per request (Promise.all), same run (Node ${process.version})`,
      ['route', 'requests/s', 'p99 latency (ms)', 'vs by hand'], [
        ['PgPool, multiplex: true', formatNumber(muxed), formatNumber(median(results['queries-multiplexed'].map((r) => r.p99))), ratio(muxed, handQueries)],
        ['pg.Pool.query by hand', formatNumber(handQueries), formatNumber(median(results['queries-by-hand'].map((r) => r.p99))), '1.00x'],
      ]);
    const fastifyOurs = median(results['fastify:use-connection'].map((r) => r.rps));
    const fastifyHand = median(results['fastify:by-hand'].map((r) => r.rps));
    printTable(`4c. Through Nest on Fastify: GET with one SELECT, same run (Node ${process.version})`,
      ['route', 'requests/s', 'p99 latency (ms)', 'vs by hand'], [
        ['@UseConnection + @Conn (PgPool)', formatNumber(fastifyOurs), formatNumber(median(results['fastify:use-connection'].map((r) => r.p99))), ratio(fastifyOurs, fastifyHand)],
        ['pg.Pool.query by hand', formatNumber(fastifyHand), formatNumber(median(results['fastify:by-hand'].map((r) => r.p99))), '1.00x'],
      ]);
    const unscopedOurs = median(results['unscoped:use-connection-unscoped'].map((r) => r.rps));
    const unscopedHand = median(results['unscoped:by-hand'].map((r) => r.rps));
    printTable(`4d. Through Nest (Express), a process in which no AsyncLocalStorage scope is ever opened, same run (Node ${process.version})`,
      ['route', 'requests/s', 'p99 latency (ms)', 'vs by hand'], [
        ['@UseConnection({ currentConnection: false }) + @Conn', formatNumber(unscopedOurs),
          formatNumber(median(results['unscoped:use-connection-unscoped'].map((r) => r.p99))), ratio(unscopedOurs, unscopedHand)],
        ['pg.Pool.query by hand', formatNumber(unscopedHand), formatNumber(median(results['unscoped:by-hand'].map((r) => r.p99))), '1.00x'],
      ]);
    const cost = await promiseCost();
    printTable(`4e. What a promise costs a process before and after its first AsyncLocalStorage scope (Node ${process.version}), best of 3 x 1,000,000`,
      ['', 'ns per then + await', 'vs before'], [
        ['before any scope', formatNumber(cost.before), '1.00x'],
        ['after one scope, outside it', formatNumber(cost.after), ratio(cost.after, cost.before)],
      ]);
    console.log('   Table 4 shares one process between @UseConnection and the hand-written route, so the second pays for the');
    console.log('   first one\'s scope too: on Node 20 and 22, table 4d is the comparison with an app that has no scope at all.');
    return {
      httpRatio: ours / hand, interceptorFloor: intercepted / hand, multiplexedQueries: muxed / handQueries, fastifyRatio: fastifyOurs / fastifyHand,
      unscopedRatio: unscopedOurs / unscopedHand, promiseCostRatio: cost.after / cost.before,
    };
  } finally {
    await Promise.all([server.stop(), fastify.stop(), unscoped.stop()]);
  }
}
