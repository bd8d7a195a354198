import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createBenchRows } from './server.js';
import { formatNumber, interleaved, median, medianInterval, percentile, printTable, ratio } from './measure.js';

const DURATION_S = 2;
const CONNECTIONS = 32;
/**
 * Rounds per comparison; each round runs every route of the comparison once, back to back.
 * Many short rounds rather than a few long ones: this machine's speed moves by tens of
 * percent from one minute to the next, and the median of 15 ratios, each taken within a
 * few seconds, is steadier than that of 7 (was 7 rounds of 3 s).
 */
const ROUNDS = 15;
/**
 * Rounds of table 4, the comparison the targets are on, of its two routes alone:
 * each pair of runs a round apart by 2 s, not 4, and enough rounds that the median's 95%
 * interval is narrower than the target's margin on a quiet machine.
 */
const MAIN_ROUNDS = 30;
/** Table 4g's offered load, as a share of table 4's requests/s by hand: below saturation, with room for the machine's swings. */
const SAME_LOAD_SHARE = 0.6;

/** The median of a route's per-round ratios and its 95% interval: `0.97x (0.93 to 1.01)`; the base route's are all 1, so just `1.00x`. */
function ratioWithInterval(ratios: number[], isBase: boolean): string {
  if (isBase) return `${median(ratios).toFixed(2)}x`;
  const [low, high] = medianInterval(ratios);
  return `${median(ratios).toFixed(2)}x (${low.toFixed(2)} to ${high.toFixed(2)})`;
}

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
  /** Rounds, if not ROUNDS. */
  rounds?: number;
}

/** A route's figure over the base route's, round by round: each ratio taken within its round. */
function perRoundRatios(rounds: RoundResult[], base: RoundResult[], figure: keyof RoundResult): number[] {
  return rounds.map((r, round) => r[figure] / base[round][figure]);
}

/** Runs one of the benchmark's scripts in a fresh process of this Node and reads the JSON it prints. */
async function scriptResult<T>(script: string): Promise<T> {
  const child = spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the benchmark script ${script} exited (${code})`);
  return JSON.parse(output) as T;
}

/** What a promise costs before and after the first AsyncLocalStorage scope, in a fresh process. */
const promiseCost = (): Promise<{ before: number; after: number }> => scriptResult('./promise-cost.js');

/** Microseconds of CPU per request of each route, per round, with no HTTP and no database (binding-cost.ts). */
const bindingCost = (): Promise<{ concurrent: number; requestsPerRound: number; byHand: number[]; useConnection: number[]; unscoped: number[] }> =>
  scriptResult('./binding-cost.js');

/** One route's figures in one round. */
interface RoundResult {
  rps: number;
  /** From each response's own time, in fractions of a millisecond (autocannon's histogram keeps whole ones). */
  p99: number;
  p50: number;
  /** CPU time the server process spent per request (user + system), in microseconds. */
  cpuUs: number;
}

/**
 * CPU time a process has used, in microseconds, from /proc (Linux): what the server spends
 * per request is a steadier measure of the binding's cost than requests/s on a machine
 * whose load generator, server and PostgreSQL share two cores.
 */
function cpuTimeUs(pid: number): number {
  // Fields after the command name (which is in parentheses and may hold spaces): utime is the 12th, stime the 13th.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * (1e6 / CLOCK_TICKS_PER_S);
}
/** Linux's USER_HZ, the unit of /proc/<pid>/stat's times, 100 on every architecture Node runs on. */
const CLOCK_TICKS_PER_S = 100;

/** Starts bench/http-app in its own process, so the load generator does not share its event loop. */
async function startServer(url: string, platform = 'express'): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
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
    pid: child.pid as number,
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
  const servers: Record<string, { port: number; pid: number }> = { fastify, unscoped };
  try {
    /** One route under load for `seconds`: as fast as it answers, or at `rate` requests/s in all. */
    const load = async (route: string, seconds: number, rate?: number): Promise<RoundResult> => {
      const [prefix, path] = route.includes(':') ? route.split(':') : ['', route];
      const { port, pid } = servers[prefix] ?? server;
      const times: number[] = [];
      const cpuBefore = cpuTimeUs(pid);
      const result = await new Promise<autocannon.Result>((resolve, reject) => {
        const run = autocannon({ url: `http://127.0.0.1:${port}/${path}`, connections: CONNECTIONS, duration: seconds, overallRate: rate },
          (error: unknown, done: autocannon.Result) => (error ? reject(error as Error) : resolve(done)));
        run.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
          times.push(responseTime);
        });
      });
      const cpuUs = cpuTimeUs(pid) - cpuBefore;
      if (result.non2xx > 0 || result.errors > 0) throw new Error(`${route}: ${result.non2xx} non-2xx, ${result.errors} errors`);
      const total = result.requests.total;
      times.sort((a, b) => a - b);
      return { rps: result.requests.average, p99: percentile(times, 99), p50: percentile(times, 50), cpuUs: cpuUs / total };
    };
    const node = process.version;
    const comparisons: Comparison[] = [
      { title: `4. Through Nest (Express, Node ${node}): GET with one SELECT`, rounds: MAIN_ROUNDS, routes: [
        { label: 'pg.Pool.query by hand', route: 'by-hand' },
        { label: '@UseConnection + @Conn (PgPool)', route: 'use-connection' },
      ] },
      { title: `4a. Through Nest (Express, Node ${node}): GET with one SELECT, behind an interceptor`, routes: [
        { label: 'pg.Pool.query by hand', route: 'by-hand' },
        { label: 'pg.Pool.query by hand + a no-op interceptor', route: 'by-hand-intercepted' },
      ], note: 'The no-op interceptor is the floor for any interceptor: Nest\'s interceptor pipeline alone.' },
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
    /** Each route's median per-round ratios to its comparison's first route. */
    const ratioOf: Record<string, { rps: number; p99: number; cpu: number }> = {};
    /** Table 4's requests/s by hand, median: the ceiling the same-load latency table offers a share of. */
    let saturatedRps = 0;
    for (const { title, routes, note, rounds = ROUNDS } of comparisons) {
      const results = await interleaved(routes.map((r) => r.route), rounds, (route) => load(route, DURATION_S));
      const base = results[routes[0].route];
      if (saturatedRps === 0) saturatedRps = median(base.map((r) => r.rps));
      const rows = routes.map(({ label, route }) => {
        const rpsRatios = perRoundRatios(results[route], base, 'rps');
        const p99Ratios = perRoundRatios(results[route], base, 'p99');
        ratioOf[route] = { rps: median(rpsRatios), p99: median(p99Ratios), cpu: median(perRoundRatios(results[route], base, 'cpuUs')) };
        const isBase = route === routes[0].route;
        const sorted = [...rpsRatios].sort((a, b) => a - b);
        const spread = `${sorted[0].toFixed(2)} to ${sorted[sorted.length - 1].toFixed(2)}`;
        const figure = (f: keyof RoundResult, digits = 0) => formatNumber(median(results[route].map((r) => r[f])), digits);
        return [label, figure('rps'), ratioWithInterval(rpsRatios, isBase), spread, figure('p99', 1), ratioWithInterval(p99Ratios, isBase),
          figure('cpuUs'), `${ratioOf[route].cpu.toFixed(2)}x`];
      });
      printTable(`${title}, autocannon ${CONNECTIONS} connections, ${rounds} rounds of ${DURATION_S} s, medians`,
        ['route', 'requests/s', 'vs by hand (95% interval)', 'rounds: lowest to highest', 'p99 (ms)', 'p99 vs by hand (95% interval)', 'server CPU µs/req', 'CPU vs by hand'], rows);
      if (note) console.log(`   ${note}`);
    }
    console.log('   "vs by hand": the median of the ratios taken within each round; requests/s, p99 and CPU are medians over the rounds.');
    console.log('   95% interval: of that median, from the rounds\' order statistics (no assumption on how the ratios spread).');
    console.log('   Rounds: the lowest and highest of the rounds\' requests/s ratios.');
    console.log('   Server CPU: the server process\'s user + system time (/proc) per request served in the round.');

    // At saturation, as in table 4, a closed loop's latency is its connections over the
    // rate served (Little's law): p99 follows requests/s, 1.02x for a route at 0.98x. The
    // latency a route adds is seen at a load both keep up with, offered at the same rate.
    const offered = Math.round(SAME_LOAD_SHARE * saturatedRps);
    const sameLoad = await interleaved(['by-hand', 'use-connection'], ROUNDS, (route) => load(route, DURATION_S, offered));
    const latencyRow = (label: string, route: 'by-hand' | 'use-connection'): string[] => {
      const rounds = sameLoad[route];
      const figure = (f: keyof RoundResult, digits = 0) => formatNumber(median(rounds.map((r) => r[f])), digits);
      const within = (f: keyof RoundResult) => perRoundRatios(rounds, sameLoad['by-hand'], f);
      const isBase = route === 'by-hand';
      return [label, figure('rps'), figure('p50', 2), ratioWithInterval(within('p50'), isBase), figure('p99', 2),
        ratioWithInterval(within('p99'), isBase), figure('cpuUs'), `${median(within('cpuUs')).toFixed(2)}x`];
    };
    printTable(`4g. Latency at the same load (Express, Node ${node}): ${formatNumber(offered)} requests/s offered to each, ` +
      `${Math.round(SAME_LOAD_SHARE * 100)}% of table 4's by hand, autocannon ${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION_S} s, medians`,
      ['route', 'requests/s', 'p50 (ms)', 'p50 vs by hand (95% interval)', 'p99 (ms)', 'p99 vs by hand (95% interval)', 'server CPU µs/req', 'CPU vs by hand'], [
        latencyRow('pg.Pool.query by hand', 'by-hand'),
        latencyRow('@UseConnection + @Conn (PgPool)', 'use-connection'),
      ]);
    console.log('   Each response\'s own time, as in table 4. Both routes keep up with the rate offered: a response waits for the');
    console.log('   requests that arrived with it, not for the queue a saturated server builds, which table 4\'s p99 measures.');
    const cost = await promiseCost();
    printTable(`4e. What a promise costs a process before and after its first AsyncLocalStorage scope (Node ${process.version}), best of 3 x 1,000,000`,
      ['', 'ns per then + await', 'vs before'], [
        ['before any scope', formatNumber(cost.before), '1.00x'],
        ['after one scope, outside it', formatNumber(cost.after), ratio(cost.after, cost.before)],
      ]);
    console.log('   Table 4 shares one process between @UseConnection and the hand-written route, so the second pays for the');
    console.log('   first one\'s scope too: on Node 20 and 22, table 4d is the comparison with an app that has no scope at all.');
    const own = await bindingCost();
    /** Each round's µs per request more than by hand, in that round. */
    const extraOver = (samples: number[]): number[] => samples.map((us, round) => us - own.byHand[round]);
    const ownRow = (label: string, samples: number[]): string[] => {
      const extra = extraOver(samples);
      const sorted = [...extra].sort((a, b) => a - b);
      // The middle half: a round's GC or a late JIT tier can throw one difference far out.
      const quartile = (p: number): string => formatNumber(percentile(sorted, p), 2);
      return [label, formatNumber(median(samples), 2), `${median(extra) >= 0 ? '+' : ''}${formatNumber(median(extra), 2)}`,
        `${quartile(25)} to ${quartile(75)}`];
    };
    printTable(`4f. The binding's own work (Node ${process.version}): CPU per request with no HTTP and no database, ` +
      `both pools on a client that answers at once, ${own.byHand.length} rounds of ${formatNumber(own.requestsPerRound)} requests, ${own.concurrent} at a time, medians`,
      ['route', 'CPU µs/req', 'vs by hand (µs)', 'middle half of per-round differences'], [
        ['pg.Pool.query by hand', formatNumber(median(own.byHand), 2), '', ''],
        ownRow('@UseConnection + @Conn (PgPool)', own.useConnection),
        ownRow('@UseConnection({ currentConnection: false }) + @Conn', own.unscoped),
      ]);
    console.log('   Each handler is called as Nest\'s router calls it (its parameters from their decorators, then the handler);');
    console.log('   what tables 4 to 4d add is HTTP, the database\'s answers (and caches gone cold between them), and noise.');
    return {
      sameLoadP99Ratio: median(perRoundRatios(sameLoad['use-connection'], sameLoad['by-hand'], 'p99')),
      httpRatio: ratioOf['use-connection'].rps, httpP99Ratio: ratioOf['use-connection'].p99, httpCpuRatio: ratioOf['use-connection'].cpu,
      interceptorFloor: ratioOf['by-hand-intercepted'].rps, multiplexedQueries: ratioOf['queries-multiplexed'].rps,
      fastifyRatio: ratioOf['fastify:use-connection'].rps, unscopedRatio: ratioOf['unscoped:use-connection-unscoped'].rps,
      promiseCostRatio: cost.after / cost.before, bindingExtraUs: median(extraOver(own.useConnection)),
    };
  } finally {
    await Promise.all([server.stop(), fastify.stop(), unscoped.stop()]);
  }
}
