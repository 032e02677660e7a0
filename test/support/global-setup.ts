// One id per test run. PostgreSQL test schemas carry it and are dropped together when the run
// ends: dropping them one by one while other files migrate makes catalogue queries fail.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export function setup(): void {
  process.env.FAPIAO_TEST_RUN = randomBytes(4).toString('hex');
}

export async function teardown(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(
      `select schema_name as name from information_schema.schemata where schema_name like $1`,
      [`fapiao_test_${process.env.FAPIAO_TEST_RUN}_%`],
    );
    for (const { name } of rows) await client.query(`drop schema ${name} cascade`);
  } finally {
    await client.end();
  }
}
