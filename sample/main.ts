import 'reflect-metadata';
import { Logger, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './embedded-database.js';
import { SampleLogger } from './sample-logger.js';

/**
 * `npm start`: the sample on `DATABASE_URL`, or on an embedded PostgreSQL (data kept in
 * `.data/`) when it is unset. SIGINT (Ctrl-C), SIGTERM (a process manager, `docker stop`)
 * and SIGHUP (a closed terminal) close the app (the pools drain), then stop the embedded
 * server; a second signal stops at once. A server left by a run killed with SIGKILL is
 * found and stopped at the next start.
 */
async function main(): Promise<void> {
  const logger = new Logger('Sample');
  let embedded: EmbeddedDatabase | undefined;
  let app: INestApplication | undefined;
  let stoppingSince: number | undefined;

  const stop = async (signal: string): Promise<void> => {
    if (stoppingSince !== undefined) {
      // npm passes on the Ctrl-C the terminal also sent: a repeat within a second is that echo.
      if (Date.now() - stoppingSince < 1_000) return;
      logger.warn(`${signal} again: stopping at once`);
      process.exit(1);
    }
    stoppingSince = Date.now();
    logger.log(`${signal}: closing the app, then ${embedded ? 'the embedded PostgreSQL' : 'exiting'}`);
    await app?.close();
    await embedded?.stop();
    logger.log('stopped');
    process.exit(0);
  };
  // Before anything starts, so that a signal during start-up also stops what has started.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop(signal));

  if (!process.env.DATABASE_URL) {
    embedded = await startEmbeddedDatabase();
    if (embedded.stoppedLeftover !== undefined) {
      logger.warn(`stopped a PostgreSQL (pid ${embedded.stoppedLeftover}) that a killed earlier run had left on ${embedded.dataDir}`);
    }
    process.env.DATABASE_URL = embedded.url;
    logger.log(`DATABASE_URL is unset: started an embedded PostgreSQL on 127.0.0.1:${embedded.port} (data in ${embedded.dataDir})`);
    if (embedded.openedUp.length > 0) {
      logger.warn(`gave the postgres user search permission (o+x) on ${embedded.openedUp.join(', ')} to reach the data`);
    }
  }
  try {
    app = await NestFactory.create(AppModule, { abortOnError: false, logger: new SampleLogger() });
  } catch {
    // Nest has already said why, once (see SampleLogger): nothing to add but the exit.
    await embedded?.stop();
    process.exit(1);
  }
  const port = Number(process.env.PORT ?? 3000);
  try {
    await app.listen(port, '127.0.0.1');
  } catch (error) {
    logger.error(`cannot listen on 127.0.0.1:${port}: ${(error as Error).message}`);
    await app.close();
    await embedded?.stop();
    process.exit(1);
  }
  logger.log(`listening on ${await app.getUrl()}: try /notes, /health, /pool/stats, /metrics; Ctrl-C stops`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
