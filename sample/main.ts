import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './embedded-database.js';

/**
 * `npm start`: the sample on `DATABASE_URL`, or on an embedded PostgreSQL (data kept in
 * `.data/`) when it is unset. Ctrl-C (SIGINT) or SIGTERM closes the app (the pools
 * drain), then stops the embedded server.
 */
async function main(): Promise<void> {
  const logger = new Logger('Sample');
  let embedded: EmbeddedDatabase | undefined;
  if (!process.env.DATABASE_URL) {
    embedded = await startEmbeddedDatabase();
    process.env.DATABASE_URL = embedded.url;
    logger.log(`DATABASE_URL is unset: started an embedded PostgreSQL on 127.0.0.1:${embedded.port} (data in ${embedded.dataDir})`);
    if (embedded.openedUp.length > 0) {
      logger.warn(`gave the postgres user search permission (o+x) on ${embedded.openedUp.join(', ')} to reach the data`);
    }
  }
  const app = await NestFactory.create(AppModule, { abortOnError: false });
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port, '127.0.0.1');
  logger.log(`listening on http://127.0.0.1:${port}: try /notes, /health, /pool/stats, /metrics`);

  const shutdown = async (signal: string): Promise<void> => {
    logger.log(`${signal}: shutting down`);
    await app.close();
    await embedded?.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
