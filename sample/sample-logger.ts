import { ConsoleLogger } from '@nestjs/common';
import { PoolError } from 'nestjs-pg-pool';

/**
 * Nest's console logger, except that a pool error that stops the app (a wrong
 * `DATABASE_URL`, a database that does not answer) is one line: its message already names
 * the pool, the server and the reason, and its stack would only repeat them.
 */
export class SampleLogger extends ConsoleLogger {
  override error(message: unknown, ...optionalParams: unknown[]): void {
    if (message instanceof PoolError) {
      const context = optionalParams.at(-1);
      super.error(`${message.name}: ${message.message}`, ...(typeof context === 'string' ? [context] : []));
      return;
    }
    super.error(message, ...optionalParams);
  }
}
