// Upload records stored in the JSON the upload request carries (snake_case, as
// docs/tax-service-protocol.md lists a record's fields), so a submission sends the stored bytes
// joined instead of parsing, re-serialising and re-encoding about a megabyte of text per 1000
// records: that took about a fifth of the background process's time in a drain of 100,000. Beside
// the JSON, the facts the worker reads without it: kind and pre-tax amount (the backlog counters
// drop by them) and the digest (a status answer must match it). Records stored before are rewritten
// here. SQLite cannot add a NOT NULL column without a default, so there the new columns allow
// NULL; nothing writes one (a record without its facts fails its upload loudly, never counts as 0).
import { PostgresAdapter, sql, type Kysely, type RawBuilder } from 'kysely';

const NEW_COLUMNS = ['kind', 'pre_tax_fen', 'digest'] as const;

// The fields of UploadRecord (camelCase, as stored before) and of the wire record, in order.
const FIELDS: ReadonlyArray<[stored: string, wire: string]> = [
  ['number', 'number'], ['kind', 'kind'], ['issuedAt', 'issued_at'], ['buyerTaxId', 'buyer_tax_id'],
  ['totalAmountFen', 'total_amount_fen'], ['totalTaxFen', 'total_tax_fen'], ['digest', 'digest'], ['content', 'content'],
];

/** SQL for `record`'s field `name` as text, and for a JSON object of text fields. */
interface JsonDialect {
  field(name: string): RawBuilder<string>;
  object(pairs: ReadonlyArray<[string, RawBuilder<string>]>): RawBuilder<string>;
}

const sqliteJson: JsonDialect = {
  field: (name) => sql`json_extract(record, ${sql.lit(`$.${name}`)})`,
  object: (pairs) => sql`json_object(${sql.join(pairs.flatMap(([key, value]) => [sql.lit(key), value]))})`,
};

const postgresJson: JsonDialect = {
  field: (name) => sql`(record::json ->> ${sql.lit(name)})`,
  object: (pairs) => sql`json_build_object(${sql.join(pairs.flatMap(([key, value]) => [sql.lit(key), value]))})::text`,
};

const dialectOf = (db: Kysely<any>) => (db.getExecutor().adapter instanceof PostgresAdapter ? postgresJson : sqliteJson);

export async function up(db: Kysely<any>): Promise<void> {
  const json = dialectOf(db);
  await db.schema.alterTable('upload_records').addColumn('kind', 'text').execute();
  await db.schema.alterTable('upload_records').addColumn('pre_tax_fen', 'bigint').execute();
  await db.schema.alterTable('upload_records').addColumn('digest', 'text').execute();
  await sql`update upload_records set
    kind = ${json.field('kind')},
    pre_tax_fen = cast(${json.field('totalAmountFen')} as bigint),
    digest = ${json.field('digest')},
    record = ${json.object(FIELDS.map(([stored, wire]) => [wire, json.field(stored)]))}`.execute(db);
  if (json === postgresJson) {
    for (const column of NEW_COLUMNS) await db.schema.alterTable('upload_records').alterColumn(column, (c) => c.setNotNull()).execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  const json = dialectOf(db);
  await sql`update upload_records set record = ${json.object(FIELDS.map(([stored, wire]) => [stored, json.field(wire)]))}`.execute(db);
  for (const column of NEW_COLUMNS) await db.schema.alterTable('upload_records').dropColumn(column).execute();
}
