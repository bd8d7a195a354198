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

  it('refuses a note without a title', async () => {
    await http().post('/notes').send({}).expect(400);
  });

  it('answers bad input with 400 (what is wrong), a conflict with 409, an id out of range with 404; never a 500', async () => {
    const bad: Array<[string, () => request.Test, number, RegExp]> = [
      ['tags a number', () => http().post('/notes').send({ title: 't', tags: 123 }), 400, /tags must be an array/],
      ['tags an object', () => http().post('/notes').send({ title: 't', tags: { a: 1 } }), 400, /tags must be an array/],
      ['tags a string', () => http().post('/notes').send({ title: 't', tags: 'abc' }), 400, /tags must be an array/],
      ['a null tag', () => http().post('/notes').send({ title: 't', tags: [null] }), 400, /each value in tags must be a string/],
      ['duplicate tags', () => http().post('/notes').send({ title: 't', tags: ['a', 'a'] }), 400, /tags must not repeat/],
      ['a bad tag', () => http().post('/notes').send({ title: 't', tags: ['Not Fine!'] }), 400, /each tag must be lower-case words/],
      ['a NUL byte in the title', () => http().post('/notes').send({ title: 'a\u0000b' }), 400, /title must not contain a NUL character/],
      ['a blank title', () => http().post('/notes').send({ title: '   ' }), 400, /title must not be blank/],
      ['an unknown field', () => http().post('/notes').send({ title: 't', colour: 'red' }), 400, /property colour should not exist/],
      ['an id past int4', () => http().get('/notes/2147483648'), 404, /note 2147483648 does not exist/],
      ['an id that is not a number', () => http().get('/notes/abc'), 400, /note id must be a positive integer/],
      ['an id of 0', () => http().delete('/notes/0'), 404, /note 0 does not exist/],
    ];
    for (const [what, send, status, message] of bad) {
      const response = await send();
      expect({ what, status: response.status, message: JSON.stringify(response.body.message) })
        .toEqual({ what, status, message: expect.stringMatching(message) });
    }
    // A conflict: the same tag added twice to one note (the primary key's 23505).
    const { body: note } = await http().post('/notes').send({ title: 'conflict', tags: ['x'] }).expect(201);
    const { body: conflict } = await http().post(`/notes/${note.id}/tags`).send({ tag: 'x' }).expect(409);
    expect(conflict).toMatchObject({ statusCode: 409, message: 'already exists (note_tags_pkey)', code: '23505' });
    await http().post(`/notes/${note.id}/tags`).send({ tag: 'y' }).expect(201);
    await http().post('/notes/2147483647/tags').send({ tag: 'y' }).expect(404);
    // Nothing of the refused requests was written.
    expect(await adminQuery("SELECT count(*)::int AS n FROM notes WHERE title IN ('t', 'a b', '   ')")).toEqual([{ n: 0 }]);
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
