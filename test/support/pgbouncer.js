// Plain JavaScript (ES module, JSDoc-typed), like postgres-server.js, for tests and benchmarks.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runAs } from './postgres-server.js';

/** Where Debian's `pgbouncer` package puts the binary (`.ci/run` installs it). */
export const PGBOUNCER_BINARY = '/usr/sbin/pgbouncer';

/**
 * A real PgBouncer in transaction mode in front of a PostgreSQL server, on a free port.
 * As root it runs as `postgres` (PgBouncer refuses to run as root).
 */
export class PgBouncer {
  /** @type {import('node:child_process').ChildProcess | undefined} */
  #process;

  /**
   * @param {string} dir
   * @param {number} port
   * @param {string} password
   */
  constructor(dir, port, password) {
    this.dir = dir;
    this.port = port;
    this.password = password;
  }

  /**
   * @param {{ host: string; port: number; user: string; password: string; database: string; poolSize?: number }} target
   * @returns {Promise<PgBouncer>}
   */
  static async start(target) {
    if (!existsSync(PGBOUNCER_BINARY)) {
      throw new Error(`PgBouncer is not installed (${PGBOUNCER_BINARY}); run: apt-get install -y pgbouncer (.ci/run does)`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'nestjs-pg-pool-pgbouncer-'));
    const port = await freePort();
    const quote = (/** @type {string} */ s) => s.replace(/"/g, '""');
    writeFileSync(join(dir, 'userlist.txt'), `"${quote(target.user)}" "${quote(target.password)}"\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'pgbouncer.ini'), [
      '[databases]',
      `${target.database} = host=${target.host} port=${target.port} dbname=${target.database}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${target.poolSize ?? 10}`,
      'max_client_conn = 1000',
      'server_reset_query =',
      'ignore_startup_parameters = extra_float_digits,application_name,options',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'));
    const ids = runAs();
    if (ids) spawnSync('chown', ['-R', `${ids.uid}:${ids.gid}`, dir]);
    const bouncer = new PgBouncer(dir, port, target.password);
    await bouncer.#spawn(ids);
    return bouncer;
  }

  /** @param {{ uid: number; gid: number } | undefined} ids */
  async #spawn(ids) {
    const child = spawn(PGBOUNCER_BINARY, [join(this.dir, 'pgbouncer.ini')], { ...ids, stdio: ['ignore', 'ignore', 'pipe'] });
    this.#process = child;
    let log = '';
    child.stderr?.on('data', (chunk) => { log = (log + chunk.toString()).slice(-4000); });
    // Ready once the port accepts connections.
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}): ${log}`);
      if (await accepts(this.port)) return;
      if (Date.now() > deadline) throw new Error(`pgbouncer did not start: ${log}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** @param {string} database */
  url(database) {
    return `postgresql://postgres:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}/${database}`;
  }

  /** @returns {Promise<void>} */
  async stop() {
    const child = this.#process;
    this.#process = undefined;
    if (child && child.exitCode === null) {
      await new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGINT');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** @param {number} port */
async function accepts(port) {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}
