/** ±10%: enough that many clients of one failed server do not retry in step. */
const JITTER = 0.1;

/**
 * Exponential backoff, as the psycopg 3 design asks: `initialMs`, doubling at each
 * failure, ±10% jitter, capped at `maxMs`. Shared by the pool's maintainer and its
 * LISTEN session, so both retry the same way.
 */
export class Backoff {
  private nextMs: number;

  constructor(private readonly initialMs: number, private readonly maxMs: number) {
    this.nextMs = initialMs;
  }

  /** The delay before the next attempt; each call doubles the one after, up to the cap. */
  next(): number {
    const delay = Math.round(this.nextMs * (1 + (Math.random() * 2 - 1) * JITTER));
    this.nextMs = Math.min(this.nextMs * 2, this.maxMs);
    return delay;
  }

  /** Go straight to the longest interval (after giving up, attempts go on at that pace). */
  toMax(): void {
    this.nextMs = this.maxMs;
  }

  /** An attempt succeeded: start again from the first delay. */
  reset(): void {
    this.nextMs = this.initialMs;
  }
}
