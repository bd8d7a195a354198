import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { MaintenanceRun, PgPool } from '../pool/index.js';

interface ScheduledPool {
  pool: PgPool;
  timer: NodeJS.Timeout;
  running: boolean;
  lastRun: MaintenanceRun | undefined;
}

/**
 * Runs the scheduled maintenance of every pool the module registers: one unref'd timer
 * per pool at the pool's `maintenanceIntervalMs`, each pass (expire, shrink,
 * keepalive, top up) logged at debug level when it changed something. The pools are
 * created with `scheduleMaintenance: false`, so this service is the only scheduler;
 * reconnect backoff stays in the engine, which reacts to failures as they happen.
 * No `@nestjs/schedule` needed.
 */
@Injectable()
export class PgPoolMaintenanceService implements OnApplicationShutdown {
  private readonly logger = new Logger('PgPoolMaintenance');
  private readonly scheduled = new Map<string, ScheduledPool>();

  /** Starts the maintenance of a pool. */
  schedule(pool: PgPool): void {
    this.unschedule(pool.name);
    const entry: ScheduledPool = {
      pool,
      running: false,
      lastRun: undefined,
      timer: setInterval(() => void this.run(entry), pool.maintenanceIntervalMs),
    };
    entry.timer.unref();
    this.scheduled.set(pool.name, entry);
    this.logger.debug(`pool '${pool.name}': maintenance every ${pool.maintenanceIntervalMs} ms`);
  }

  /** Stops the maintenance of a pool. */
  unschedule(name: string): void {
    const entry = this.scheduled.get(name);
    if (!entry) return;
    clearInterval(entry.timer);
    this.scheduled.delete(name);
  }

  /** Runs a pass now on one pool, or on every pool; resolves with each pass's summary by pool name. */
  async runNow(name?: string): Promise<Record<string, MaintenanceRun>> {
    const entries = name === undefined ? [...this.scheduled.values()] : [this.scheduled.get(name)];
    const results: Record<string, MaintenanceRun> = {};
    for (const entry of entries) {
      if (!entry) throw new Error(`PgPoolMaintenanceService: no pool named '${name}' is scheduled; scheduled pools: ${this.names()}`);
      const run = await this.run(entry, true);
      if (run) results[entry.pool.name] = run;
    }
    return results;
  }

  /** The last pass's summary of a pool, if one has run. */
  lastRun(name: string): MaintenanceRun | undefined {
    return this.scheduled.get(name)?.lastRun;
  }

  /** The names of the pools under maintenance. */
  names(): string[] {
    return [...this.scheduled.keys()];
  }

  /** Nest's shutdown hook: stops every pool's maintenance timer. */
  onApplicationShutdown(): void {
    for (const name of this.names()) this.unschedule(name);
  }

  private async run(entry: ScheduledPool, force = false): Promise<MaintenanceRun | undefined> {
    // A pass that checks connections awaits the server: never start a second one on top.
    if (entry.running && !force) return undefined;
    entry.running = true;
    try {
      const run = await entry.pool.runMaintenance();
      entry.lastRun = run;
      if (run.expired + run.shrunk + run.keepaliveFailed + run.opening > 0) {
        this.logger.debug(`pool '${entry.pool.name}': expired ${run.expired}, shrank ${run.shrunk}, ` +
          `keepalive ${run.keepaliveChecked} checked / ${run.keepaliveFailed} failed, opening ${run.opening}`);
      }
      return run;
    } catch (error) {
      this.logger.error(`pool '${entry.pool.name}': maintenance failed: ${(error as Error).message}`);
      return undefined;
    } finally {
      entry.running = false;
    }
  }
}
