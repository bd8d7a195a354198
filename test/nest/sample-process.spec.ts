import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testUrl } from '../support/database.js';
import { packageRoot } from '../support/built-package.js';
import { freePort } from '../support/postgres-server.js';

/**
 * The sample as a user runs it: `npm run serve` (what `npm start` execs into after
 * building), in a process group of its own as a terminal would start it, stopped the
 * ways users and process managers stop it.
 */
interface RunningSample {
  child: ChildProcess;
  output: () => string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

function startSample(env: Record<string, string | undefined>): RunningSample {
  if (!existsSync(join(packageRoot, 'dist-sample', 'sample', 'main.js'))) {
    throw new Error("dist-sample/ is missing: run 'npm run build:sample' (npm test does it before jest)");
  }
  const child = spawn('npm', ['run', '-s', 'serve'], {
    cwd: packageRoot,
    env: { ...process.env, NO_COLOR: '1', DATABASE_URL: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // a process group, as a terminal's foreground job
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, output: () => output, exited };
}

async function until(what: string, check: () => boolean, sample: RunningSample, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${sample.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function exitOf(sample: RunningSample, timeoutMs = 30_000): Promise<[number | null, NodeJS.Signals | null]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the sample did not exit within ${timeoutMs} ms; output:\n${sample.output()}`)), timeoutMs);
  });
  try {
    return await Promise.race([sample.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The pid in a data directory's postmaster.pid, if the server that wrote it is alive. */
function runningServerPid(dataDir: string): number | undefined {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** The app's own pid, from Nest's log lines (`[Nest] <pid>  - `). */
function appPid(output: string): number {
  const match = /\[Nest\] (\d+)/.exec(output);
  if (!match) throw new Error(`no Nest log line in:\n${output}`);
  return Number(match[1]);
}

const occurrences = (text: string, needle: string): number => text.split(needle).length - 1;

describe('the sample as a process: start, stop and failing starts', () => {
  let workDir: string;
  let dataDir: string;
  let env: Record<string, string>;
  const stray: ChildProcess[] = [];

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'nestjs-pg-pool-sample-'));
    dataDir = join(workDir, 'postgres');
    env = { PORT: String(await freePort()), SAMPLE_PG_PORT: String(await freePort()), SAMPLE_PG_DATA: dataDir };
  });

  afterAll(async () => {
    for (const child of stray) {
      if (child.exitCode !== null || child.signalCode !== null || !child.pid) continue;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
    const pid = runningServerPid(dataDir);
    if (pid) process.kill(pid, 'SIGQUIT');
    rmSync(workDir, { recursive: true, force: true });
  });

  const health = async (): Promise<number> => (await fetch(`http://127.0.0.1:${env.PORT}/health`)).status;

  it('Ctrl-C (SIGINT to the whole group) closes the app, then its embedded PostgreSQL, without a lost-connection warning', async () => {
    const sample = startSample(env);
    stray.push(sample.child);
    await until('the sample to listen', () => sample.output().includes('listening on'), sample);
    expect(await health()).toBe(200);
    const serverPid = runningServerPid(dataDir);
    expect(serverPid).toBeDefined();
    process.kill(-sample.child.pid!, 'SIGINT');
    expect(await exitOf(sample)).toEqual([0, null]);
    expect(sample.output()).toContain('stopped');
    expect(sample.output()).not.toMatch(/was lost|terminating connection|again: stopping at once/);
    expect(runningServerPid(dataDir)).toBeUndefined();
  }, 90_000);

  it('after a kill -9 of the app, the next start stops the PostgreSQL it left and says so; SIGTERM to npm stops both', async () => {
    const first = startSample(env);
    stray.push(first.child);
    await until('the sample to listen', () => first.output().includes('listening on'), first);
    process.kill(appPid(first.output()), 'SIGKILL');
    await exitOf(first);
    const leftover = runningServerPid(dataDir);
    expect(leftover).toBeDefined(); // what used to block the next start (postmaster.pid)

    const second = startSample(env);
    stray.push(second.child);
    await until('the sample to listen', () => second.output().includes('listening on'), second);
    expect(second.output()).toContain(`stopped a PostgreSQL (pid ${leftover}) that a killed earlier run had left`);
    expect(await health()).toBe(200);
    // What a process manager or `docker stop` sends: SIGTERM to npm alone.
    second.child.kill('SIGTERM');
    expect(await exitOf(second)).toEqual([0, null]);
    expect(runningServerPid(dataDir)).toBeUndefined();
  }, 120_000);

  it('against a database that does not exist: exits 1 and says why once, with no promise of a retry', async () => {
    const url = new URL(testUrl());
    url.pathname = '/no_such_database';
    const sample = startSample({ ...env, DATABASE_URL: url.toString() });
    stray.push(sample.child);
    expect(await exitOf(sample)).toEqual([1, null]);
    const output = sample.output();
    expect(occurrences(output, 'database "no_such_database" does not exist')).toBe(1);
    expect(output).toMatch(/PoolOpenError: pool 'default': cannot connect to .*\/no_such_database: database "no_such_database" does not exist/);
    expect(output).not.toMatch(/retrying|\n\s+at /);
  }, 60_000);

  it('against a server that accepts and never answers: exits 1 with "connect timeout" as the reason, once', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const blackHole: Server = createServer((socket) => { sockets.add(socket); });
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const { port } = blackHole.address() as { port: number };
    try {
      const sample = startSample({ ...env, DATABASE_URL: `postgresql://app:secret-pw@127.0.0.1:${port}/app` });
      stray.push(sample.child);
      expect(await exitOf(sample)).toEqual([1, null]);
      const output = sample.output();
      expect(occurrences(output, 'connect timeout after 5000 ms')).toBe(1);
      expect(output).not.toMatch(/retrying|secret-pw/);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => blackHole.close(() => resolve()));
    }
  }, 60_000);
});
