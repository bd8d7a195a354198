import type { PoolConnection } from './pool-connection.js';
import type { ResolvedPoolOptions } from './pool-options.js';
import type { PoolCounters } from './pool-stats.js';

/** The stack of the code calling acquire(), without the pool's own frames. */
export function acquiringStack(): string {
  return (new Error('acquired here').stack ?? '').split('\n').slice(2).join('\n');
}

/**
 * HikariCP's leak detection (`leakDetectionMs`): a client checked out for longer is
 * reported once, at warn level, with the stack of the code that acquired it, and counted
 * in `leaksDetected`. Off (no stack captured, no timer) when `leakDetectionMs` is 0.
 */
export class LeakDetector {
  constructor(private readonly settings: ResolvedPoolOptions, private readonly counters: PoolCounters) {}

  /** Whether acquire() should capture its caller's stack. */
  get enabled(): boolean {
    return this.settings.leakDetectionMs > 0;
  }

  /** Arms the warning for this checkout. */
  watch(connection: PoolConnection, checkout: number, acquiredAt: string): void {
    const limit = this.settings.leakDetectionMs;
    connection.leakTimer = setTimeout(() => {
      if (connection.checkouts !== checkout || connection.state !== 'in-use') return;
      this.counters.leaksDetected++;
      this.settings.logger.warn(`pool '${this.settings.name}': a client has been checked out for more than ${limit} ms ` +
        `(leakDetectionMs); it was acquired at:\n${acquiredAt}`);
    }, limit);
    connection.leakTimer.unref();
  }

  /** The client came back: no warning. */
  clear(connection: PoolConnection): void {
    if (!connection.leakTimer) return;
    clearTimeout(connection.leakTimer);
    connection.leakTimer = undefined;
  }
}
