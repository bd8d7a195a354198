/**
 * `work`, or a rejection with `message` once `ms` have passed, whichever comes first.
 * The work is not cancelled (a promise cannot be); callers that own a connection close
 * or cancel it themselves when the timeout wins.
 */
/** The error `withTimeout` rejects with, so callers can tell a timeout from the work's own failure. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

export async function withTimeout<T>(work: PromiseLike<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
