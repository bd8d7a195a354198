import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createBenchRows } from './server.js';
import { formatNumber, interleaved, median, printTable, ratio } from './measure.js';

const DURATION_S = 5;
const CONNECTIONS = 32;
const ROUNDS = 3;
const ROUTES = ['use-connection', 'by-hand', 'by-hand-intercepted', 'queries-multiplexed', 'queries-by-hand',
  'fastify:use-connection', 'fastify:by-hand'] as const;

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
  try {
    const load = (route: string, seconds: number) => autocannon({
      url: route.startsWith('fastify:') ? `http://127.0.0.1:${fastify.port}/${route.slice('fastify:'.length)}` : `http://127.0.0.1:${server.port}/${route}`,
      connections: CONNECTIONS, duration: seconds,
    });
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
    return { httpRatio: ours / hand, interceptorFloor: intercepted / hand, multiplexedQueries: muxed / handQueries, fastifyRatio: fastifyOurs / fastifyHand };
  } finally {
    await Promise.all([server.stop(), fastify.stop()]);
  }
}
