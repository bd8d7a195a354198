import request from 'supertest';
import { AppModule } from '../../sample/app.module.js';
import { adminQuery, eventually, testPassword, testUrlWithAppName } from '../support/database.js';
import { startApp, type TestApp } from '../support/nest-app.js';
import { PostgresServer } from '../support/postgres-server.js';
import { TEST_PASSWORD } from '../support/test-secrets.js';

async function startSample(databaseUrl: string): Promise<TestApp> {
  process.env.DATABASE_URL = databaseUrl;
  try {
    return await startApp({ imports: [AppModule] });
  } finally {
    delete process.env.DATABASE_URL;
  }
}

describe('the sample app', () => {
  let sample: TestApp;
  const http = () => request(sample.app.getHttpServer());

  beforeAll(async () => {
    sample = await startSample(testUrlWithAppName());
  });

  afterAll(async () => {
    await sample.close();
  });

  it('creates, lists, gets and deletes notes', async () => {
    const created = await http().post('/notes').send({ title: 'buy milk', tags: ['home', 'errands'] }).expect(201);
    expect(created.body).toMatchObject({ title: 'buy milk', tags: ['errands', 'home'] });
    const id = created.body.id as number;
    const list = await http().get('/notes').expect(200);
    expect(list.body).toEqual(expect.arrayContaining([created.body]));
    await http().get(`/notes/${id}`).expect(200, created.body);
    await http().delete(`/notes/${id}`).expect(204);
    await http().get(`/notes/${id}`).expect(404);
    await http().delete(`/notes/${id}`).expect(404);
  });

  it('rolls back the whole note when a tag is refused: no note is left behind', async () => {
    const title = `rolled back ${Date.now()}`;
    const { body } = await http().post('/notes').send({ title, tags: ['fine', 'Not Fine!'] }).expect(400);
    expect(body.message).toBe('tags must be lower-case words (a-z, 0-9, -)');
    expect(await adminQuery('SELECT 1 FROM notes WHERE title = $1', [title])).toHaveLength(0);
  });

  it('refuses a note without a title', async () => {
    await http().post('/notes').send({}).expect(400);
  });

  it('answers /health as a readiness probe with the pool stats', async () => {
    const { body, text } = await http().get('/health').expect(200);
    expect(body.details.database).toMatchObject({ status: 'up', pool: 'default', poolMin: 2, poolMax: 10 });
    expect(text).not.toContain(testPassword());
  });

  it('answers /metrics in the Prometheus text format with the pool metrics', async () => {
    await http().get('/notes').expect(200);
    const { text, headers } = await http().get('/metrics').expect(200);
    expect(headers['content-type']).toMatch(/^text\/plain/);
    expect(text).toContain('pg_pool_pool_max{pool="default"} 10');
    expect(text).toMatch(/pg_pool_requests_num_total\{pool="default"\} [1-9]/);
  });

  it('answers /pool/stats with every pool by name', async () => {
    const { body } = await http().get('/pool/stats').expect(200);
    expect(Object.keys(body)).toEqual(['default']);
    expect(body.default).toMatchObject({ poolMin: 2, poolMax: 10, requestsWaiting: 0 });
  });
});

describe('the sample app while its database restarts', () => {
  it('reports down on /health while the database is stopped, and every route recovers', async () => {
    const server = await PostgresServer.create({ password: TEST_PASSWORD });
    await server.start();
    const sample = await startSample(server.url());
    const http = () => request(sample.app.getHttpServer());
    // HTTP load through the whole outage: a few clients looping on GET /notes, bounded.
    const statuses: Array<{ at: number; status: number; body: string }> = [];
    let loading = true;
    const deadline = Date.now() + 60_000;
    const client = async (): Promise<void> => {
      for (let i = 0; i < 5_000 && loading && Date.now() < deadline; i++) {
        const response = await http().get('/notes');
        statuses.push({ at: Date.now(), status: response.status, body: response.text });
      }
    };
    const clients = [1, 2, 3].map(client);
    try {
      await eventually('the load is served', () => statuses.filter((s) => s.status === 200).length >= 20);
      await http().get('/health').expect(200);
      await server.stop();
      await eventually('/health says down', async () => (await http().get('/health')).status === 503);
      await eventually('requests see the outage as 503s', () => statuses.some((s) => s.status === 503), 15_000);
      const notes = await http().get('/notes');
      expect(notes.status).toBe(503);
      expect(notes.body).toMatchObject({ statusCode: 503, pool: 'default' });
      await server.start();
      await eventually('/health says up again', async () => (await http().get('/health')).status === 200, 15_000);
      const recoveredAt = Date.now();
      await eventually('the load is served again', () => statuses.filter((s) => s.at > recoveredAt && s.status === 200).length >= 20, 15_000);
      loading = false;
      await Promise.all(clients);
      // After recovery every route answers 200; during the outage only 503s (busy/down) or a
      // 500 for a request whose connection died under it, never a password.
      expect(statuses.filter((s) => s.at > recoveredAt + 500).every((s) => s.status === 200)).toBe(true);
      expect(statuses.every((s) => [200, 500, 503].includes(s.status))).toBe(true);
      expect(statuses.map((s) => s.body).join('\n')).not.toContain(TEST_PASSWORD);
      await http().get('/notes').expect(200);
      await http().post('/notes').send({ title: 'after the restart' }).expect(201);
    } finally {
      loading = false;
      await Promise.all(clients);
      await sample.close();
      await server.destroy();
    }
  });
});
