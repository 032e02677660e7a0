// One short-lived PostgreSQL connection for a benchmark's housekeeping (create and drop its own
// database, read sizes and plans).
import pg from 'pg';

export async function withPostgres<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
