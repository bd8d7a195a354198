import { createTestPool } from '../support/database';
describe('smoke', () => {
  it('queries', async () => {
    const pool = createTestPool({ min: 2 });
    const r = await pool.query('SELECT 1 AS x');
    expect(r.rows).toEqual([{ x: 1 }]);
  });
});
