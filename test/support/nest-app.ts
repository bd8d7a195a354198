import type { INestApplication, LoggerService, ModuleMetadata } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { PgPoolRegistry } from '../../lib/nest/index.js';
import { loggedLines, watchedPools } from './database.js';

/** A Nest logger that keeps every line (for assertions) and prints nothing. */
export class RecordingNestLogger implements LoggerService {
  readonly lines: Array<{ level: string; context: string | undefined; message: string }> = [];

  private keep(level: string) {
    return (message: unknown, ...rest: unknown[]): void => {
      const context = typeof rest[rest.length - 1] === 'string' ? rest[rest.length - 1] as string : undefined;
      const text = message instanceof Error ? `${message.message}\n${message.stack}` : String(message);
      this.lines.push({ level, context, message: text });
      loggedLines.push(text);
    };
  }

  log = this.keep('log');
  error = this.keep('error');
  warn = this.keep('warn');
  debug = this.keep('debug');
  verbose = this.keep('verbose');
  fatal = this.keep('fatal');
}

export interface TestApp {
  app: INestApplication;
  registry: PgPoolRegistry;
  logger: RecordingNestLogger;
  close(): Promise<void>;
}

/**
 * Boots a Nest application from this metadata, as `NestFactory.create` would, with a
 * recording logger. Its pools are watched by the after-each leak check.
 */
export async function startApp(metadata: ModuleMetadata, options: { platform?: 'express' | 'fastify' } = {}): Promise<TestApp> {
  const logger = new RecordingNestLogger();
  const moduleRef = await Test.createTestingModule(metadata).setLogger(logger).compile();
  const app = options.platform === 'fastify'
    ? moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger })
    : moduleRef.createNestApplication({ logger });
  await app.init();
  if (options.platform === 'fastify') await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
  const registry = app.get(PgPoolRegistry);
  const pools = registry.ids().map((id) => registry.get(id));
  pools.forEach((pool) => watchedPools.add(pool));
  return {
    app,
    registry,
    logger,
    close: async () => {
      await app.close();
      pools.forEach((pool) => watchedPools.delete(pool));
    },
  };
}

/** Compiles and initialises an app that is expected to fail its bootstrap; resolves with the error. */
export async function bootstrapError(metadata: ModuleMetadata): Promise<Error> {
  const logger = new RecordingNestLogger();
  try {
    const moduleRef = await Test.createTestingModule(metadata).setLogger(logger).compile();
    const app = moduleRef.createNestApplication({ logger });
    await app.init();
    await app.close();
  } catch (error) {
    return error as Error;
  }
  throw new Error('the bootstrap was expected to fail, and did not');
}
