import { StreamableFile } from '@nestjs/common';
import { Transform } from 'node:stream';
import QueryStream from 'pg-query-stream';
import type { Test } from 'supertest';
import type { PooledClient } from '../../lib/index.js';

/**
 * A StreamableFile of the numbers 1 to `count` from a pg-query-stream on `client`, one per
 * line. generate_series() in the select list, not in FROM: there PostgreSQL materializes
 * the whole series before the first row, which for an "endless" stream of 100 million
 * took 14 s here, and more than a test's patience on a loaded machine.
 */
export function streamedRows(client: PooledClient, count: number): StreamableFile {
  const rows = client.query(new QueryStream('SELECT generate_series(1, $1::int) AS g', [count], { batchSize: 200 }));
  const lines = new Transform({
    objectMode: true,
    transform(row: { g: number }, _encoding, callback) {
      callback(null, `${row.g}\n`);
    },
  });
  rows.on('error', (error) => lines.destroy(error));
  return new StreamableFile(rows.pipe(lines));
}

/** A supertest request whose body is read as text, whatever its content type. */
export async function bodyText(test: Test): Promise<string> {
  const { body } = await test.buffer(true).parse((response, callback) => {
    let received = '';
    response.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    response.on('end', () => callback(null, received));
  }) as { body: string };
  return body;
}
