/** The error `withTimeout` rejects with, so callers can tell a timeout from the work's own failure. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** What `raceDeadline` resolves with when the time ran out first. */
export const LATE: unique symbol = Symbol('late');

/**
 * `work`'s outcome, or `LATE` once `ms` have passed first (at once for `ms <= 0`). The
 * work is not cancelled (a promise cannot be); it goes on. With `unref`, the timer keeps
 * no process alive on its own.
 */
export async function raceDeadline<T>(work: PromiseLike<T>, ms: number, unref = false): Promise<T | typeof LATE> {
  if (ms <= 0) return LATE;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<typeof LATE>((resolve) => {
        timer = setTimeout(() => resolve(LATE), ms);
        if (unref) timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `work`, or a rejection with a `TimeoutError` carrying `message` once `ms` have passed,
 * whichever comes first. Callers that own a connection close or cancel it themselves when
 * the timeout wins.
 */
export async function withTimeout<T>(work: PromiseLike<T>, ms: number, message: string): Promise<T> {
  const outcome = await raceDeadline(work, ms);
  if (outcome === LATE) throw new TimeoutError(message);
  return outcome;
}
