import { Client, type ClientConfig } from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { PgPool, type PgPoolOptions, type PoolLogger } from '../../lib/index.js';

/** Every pool a test file creates, so the after-each check can find and close them. */
export const trackedPools = new Set<PgPool>();

/** Pools of a Nest app that lives across a file's tests: checked after each test, closed by the app. */
export const watchedPools = new Set<PgPool>();

/** Every line the pools wrote through their logger, for the no-secrets assertion. */
export const loggedLines: string[] = [];

/**
 * Texts the after-file sweep looks for in `loggedLines`, besides the test servers'
 * passwords: a test file's TLS key and certificate bodies and key passphrase.
 */
export const sweptSecrets = new Set<string>();

/** The prefix of `application_name` for this worker's sessions: how we find ours in pg_stat_activity. */
export const APP_PREFIX = `pgpool-test-${process.pid}-`;
let sequence = 0;

export function testUrl(): string {
  const url = process.env.PG_TEST_URL;
  if (!url) throw new Error('PG_TEST_URL is not set: run the tests through jest (its globalSetup starts a server)');
  return url;
}

export function testPassword(): string {
  return parseIntoClientConfig(testUrl()).password as string;
}

/** A logger that keeps what it is told, so tests can assert on it and nothing reaches the console. */
export function recordingLogger(lines: string[] = []): PoolLogger & { lines: string[] } {
  const keep = (level: string) => (message: string): void => {
    lines.push(`${level}: ${message}`);
    loggedLines.push(message);
  };
  return { lines, debug: keep('debug'), log: keep('log'), warn: keep('warn'), error: keep('error') };
}

/** A unique application_name, so a test can count exactly its own backends. */
export function uniqueAppName(): string {
  return `${APP_PREFIX}${++sequence}`;
}

/**
 * A pool on the test server with a unique application_name and a recording logger,
 * closed and checked for leaks after the test.
 */
export function createTestPool(options: Partial<PgPoolOptions> = {}): PgPool {
  const pool = new PgPool({
    connectionString: testUrl(),
    logger: recordingLogger(),
    // PG_TEST_MULTIPLEX=1: the engine's tests again, pool.query() multiplexed (where a test sets nothing else).
    ...(process.env.PG_TEST_MULTIPLEX === '1' ? { multiplex: true } : {}),
    ...options,
    connection: { application_name: uniqueAppName(), ...options.connection },
  });
  trackedPools.add(pool);
  // Event payloads go through the secrets sweep too (see leak-check.ts). Not 'error':
  // a listener there would change what the tests of that event observe.
  pool.on('connectError', (error) => loggedLines.push(error.message));
  return pool;
}

/** A URL of the test server whose sessions carry a fresh test application_name. */
export function testUrlWithAppName(applicationName: string = uniqueAppName()): string {
  const url = testUrl();
  return `${url}${url.includes('?') ? '&' : '?'}application_name=${encodeURIComponent(applicationName)}`;
}

/** Runs one statement on a separate, unpooled connection (the "DBA's" view). */
export async function adminQuery<R extends Record<string, unknown>>(text: string, values: unknown[] = []): Promise<R[]> {
  const client = new Client(testUrl());
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** The application_name a pool's connections carry. */
export function appNameOf(pool: PgPool): string {
  return String((pool.options.target.clientConfig as ClientConfig).application_name);
}

/** How many backends the server has for this application_name, optionally in one state. */
export async function backendCount(applicationName: string, state?: string): Promise<number> {
  const rows = await adminQuery<{ n: string }>(
    'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND ($2::text IS NULL OR state = $2)',
    [applicationName, state ?? null],
  );
  return Number(rows[0].n);
}

/** Terminates every backend of this application_name, as a DBA or a failover would. */
export async function terminateBackends(applicationName: string, state?: string): Promise<number> {
  // Two statements: in one, the planner may call pg_terminate_backend before the filter.
  const pids = (await adminQuery<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND ($2::text IS NULL OR state = $2)',
    [applicationName, state ?? null],
  )).map((row) => row.pid);
  await adminQuery('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
  return pids.length;
}

/** Polls until `probe` returns true, or fails with `what` after `timeoutMs`. No bare sleeps. */
export async function eventually(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
