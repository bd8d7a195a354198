import { redactConnectionString } from '../../lib/index.js';

describe('redactConnectionString', () => {
  const cases: Array<[string, string]> = [
    ['postgresql://app:secret@db:5432/main', 'postgresql://app:***@db:5432/main'],
    ['postgres://app:p@ss@word@db/main', 'postgres://app:***@db/main'],
    ['postgresql://app:a:b:c@db/main', 'postgresql://app:***@db/main'],
    ['postgresql://app:sl/ash@db/main', 'postgresql://app:***@db/main'],
    ['postgresql://app:100%real@db/main', 'postgresql://app:***@db/main'],
    ['postgresql://app:pässwörd✓@db/main', 'postgresql://app:***@db/main'],
    ['postgresql://app:p%40ss@db/main?sslmode=require&application_name=x@y', 'postgresql://app:***@db/main?sslmode=require&application_name=x@y'],
    ['postgresql://db/main?user=app&password=secret&sslmode=require', 'postgresql://db/main?user=app&password=***&sslmode=require'],
    ["host=db user=app password='sec ret' dbname=main", 'host=db user=app password=*** dbname=main'],
    ['postgresql://app@db/main', 'postgresql://app@db/main'],
    ['postgresql://db/main', 'postgresql://db/main'],
  ];

  it.each(cases)('redacts %s', (input, expected) => {
    expect(redactConnectionString(input)).toBe(expected);
  });
});
