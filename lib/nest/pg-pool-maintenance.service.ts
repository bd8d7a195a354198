import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { MaintenanceRun, PgPool } from '../pool/index.js';

/**
 * The maintenance of every pool the module registers, as Nest sees it. The schedule
 * itself is the engine's, one per pool (`Maintainer`, at the pool's
 * `maintenanceIntervalMs`, unref'd, stopped when the pool closes), so there is one
 * scheduler and one debug line per pass that changed something, through the pool's
 * Nest logger (`PgPool:<name>`). This service lists the pools under maintenance and
 * runs passes on demand. Reconnect backoff stays in the engine too, which reacts to
 * failures as they happen. No `@nestjs/schedule` needed.
 */
@Injectable()
export class PgPoolMaintenanceService implements OnApplicationShutdown {
  private readonly scheduled = new Map<string, PgPool>();

  /** Puts a pool under maintenance (its own schedule starts when it opens). */
  schedule(pool: PgPool): void {
    this.scheduled.set(pool.name, pool);
  }

  /** Forgets a pool (its schedule stops when it closes). */
  unschedule(name: string): void {
    this.scheduled.delete(name);
  }

  /** Runs a pass now on one pool, or on every pool; resolves with each pass's summary by pool name. */
  async runNow(name?: string): Promise<Record<string, MaintenanceRun>> {
    const pools = name === undefined ? [...this.scheduled.values()] : [this.scheduled.get(name)];
    const results: Record<string, MaintenanceRun> = {};
    for (const pool of pools) {
      if (!pool) throw new Error(`PgPoolMaintenanceService: no pool named '${name}' is scheduled; scheduled pools: ${this.names()}`);
      results[pool.name] = await pool.runMaintenance();
    }
    return results;
  }

  /** The last pass's summary of a pool, if one has run. */
  lastRun(name: string): MaintenanceRun | undefined {
    return this.scheduled.get(name)?.lastMaintenance;
  }

  /** The names of the pools under maintenance. */
  names(): string[] {
    return [...this.scheduled.keys()];
  }

  /** Nest's shutdown hook: forgets every pool (each one's schedule stops as it closes). */
  onApplicationShutdown(): void {
    this.scheduled.clear();
  }
}
