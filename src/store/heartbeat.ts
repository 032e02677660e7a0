// /readyz: prove that a write commits and a read answers, right now.
import { hostname } from 'node:os';
import { type Kysely, sql } from 'kysely';
import type { Store } from '../app/ports.js';
import type { Database } from './schema.js';
import { translateDriverError } from './driver-errors.js';

const INSTANCE_ID = `${hostname()}:${process.pid}`;

export async function heartbeat(write: Store['write'], reader: Kysely<Database>): Promise<void> {
  await write((tx) => tx.heartbeat(INSTANCE_ID, new Date().toISOString()));
  try {
    await sql`select 1 from heartbeats limit 1`.execute(reader);
  } catch (error) {
    throw translateDriverError(error);
  }
}
