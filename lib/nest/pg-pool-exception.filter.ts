import { Catch, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { PoolClosedError, PoolTimeoutError, PoolUnavailableError, TooManyRequestsError, UnknownPoolError, type PoolError } from '../pool/index.js';

/** The body of a 503 caused by the pool. */
export interface PoolUnavailableBody {
  /** Always 503. */
  statusCode: 503;
  /** Always 'Service Unavailable'. */
  error: 'Service Unavailable';
  /** What is wrong, for a human, without internals. */
  message: string;
  /** The database id of the pool. */
  pool: string;
}

const MESSAGES = new Map<string, string>([
  ['PoolTimeoutError', 'the database is busy: no connection became available in time; retry later'],
  ['TooManyRequestsError', 'the database is saturated: too many requests are waiting; retry later'],
  ['PoolClosedError', 'the database connection pool is shutting down'],
  ['PoolUnavailableError', 'database unavailable; retry later'],
]);

/**
 * Turns the pool errors that mean "busy" or "down" into 503 Service Unavailable with a
 * short JSON body naming the pool and a `Retry-After` header, instead of a 500. The full
 * message (sizes, the last connection error) goes to the log, not to the HTTP client.
 * An unknown tenant id (`UnknownPoolError`, from `forTenants`' resolver) becomes a 404.
 * Registered application-wide by the module (it catches nothing else).
 */
@Catch(PoolTimeoutError, TooManyRequestsError, PoolClosedError, PoolUnavailableError, UnknownPoolError)
export class PgPoolExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('PgPoolModule');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: PoolError, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw error;
    this.logger.warn(`${error instanceof UnknownPoolError ? 404 : 503} for ${error.name}: ${error.message}`);
    const { httpAdapter } = this.adapterHost;
    const response: unknown = host.switchToHttp().getResponse();
    if ((response as { headersSent?: boolean }).headersSent) return;
    if (error instanceof UnknownPoolError) {
      // A tenant id the resolver does not know: the request names something that is not there.
      httpAdapter.reply(response, { statusCode: 404, error: 'Not Found', message: 'no such database id', pool: error.poolName }, 404);
      return;
    }
    const body: PoolUnavailableBody = {
      statusCode: 503,
      error: 'Service Unavailable',
      message: MESSAGES.get(error.name) ?? 'the database is unavailable',
      pool: error.poolName,
    };
    const retryAfterMs = error instanceof PoolUnavailableError ? error.retryAfterMs : 1_000;
    httpAdapter.setHeader(response, 'Retry-After', String(Math.max(1, Math.ceil(retryAfterMs / 1_000))));
    httpAdapter.reply(response, body, 503);
  }
}
