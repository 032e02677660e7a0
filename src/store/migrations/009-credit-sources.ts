// The month's credit line (授信额度, R9) from two sources in two columns. Until now one column,
// `monthly_credit_fen`, held both the operator's limit (`fapiao merchant add|limits
// --monthly-credit`) and the tax service's grant (each terms refresh wrote its line over it, and
// one that granted none kept what was there), so a grant once made could never be lifted and each
// source overwrote the other. Now `operator_credit_fen` is the operator's and `granted_credit_fen`
// the tax service's; issuing applies the lower.
//
// Where the stored value came from, merchant by merchant:
//  - terms never fetched (`terms_fetched_at` null): only the operator writes the column → operator's.
//  - terms fetched: the audit log replays who changed it last. `merchant.limits_changed` is the
//    operator's; a `merchant.terms_changed` (actor tax-service) that changed the recorded value is
//    the tax service's grant, while one that recorded the value as it was only kept it. What the
//    log cannot tell (the value given at `merchant add`, which `merchant.added` does not record, and
//    then first seen in a terms change; an operator's `limits` call that repeated a grant) stays in
//    BOTH columns: the grant is set right by the next terms refresh, and the operator's copy keeps
//    the limit exactly where it was until the operator lifts it. So nothing binds less than before;
//    a stale copy shows as "operator binds" in `GET /api/v1/merchant` and `fapiao merchant list --json`.
// The next refresh (FAPIAO_TERMS_REFRESH_MS, 10 minutes) writes the tax service's current grant
// in any case, and a null from it lifts the grant.
import { type Kysely, sql } from 'kysely';

type Source = 'operator' | 'tax_service' | 'unknown';
const CHANGES = ['merchant.limits_changed', 'merchant.terms_changed'];

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('merchants').renameColumn('monthly_credit_fen', 'operator_credit_fen').execute();
  await db.schema.alterTable('merchants').addColumn('granted_credit_fen', 'bigint').execute();

  const fetched = await db.selectFrom('merchants').select(['id', 'operator_credit_fen']).where('terms_fetched_at', 'is not', null).where('operator_credit_fen', 'is not', null).execute();
  if (fetched.length === 0) return;
  const changes = new Map<string, Array<{ action: string; detail: string }>>();
  for (const c of await db.selectFrom('audit_log').select(['merchant_id', 'action', 'detail']).where('action', 'in', CHANGES).orderBy('id').execute()) {
    if (!changes.has(c.merchant_id)) changes.set(c.merchant_id, []);
    changes.get(c.merchant_id)!.push(c);
  }
  for (const merchant of fetched) {
    const stored = String(merchant.operator_credit_fen);
    const source = lastSource(changes.get(merchant.id) ?? [], stored);
    if (source === 'operator') continue;
    await db
      .updateTable('merchants')
      .set({ granted_credit_fen: stored, ...(source === 'tax_service' && { operator_credit_fen: null }) })
      .where('id', '=', merchant.id)
      .execute();
  }
}

/** Who set `stored`, replaying a merchant's credit-line changes in order. */
function lastSource(changes: ReadonlyArray<{ action: string; detail: string }>, stored: string): Source {
  let value: string | null | undefined; // undefined: the value given at `merchant add`, unrecorded
  let source: Source = 'operator';
  for (const change of changes) {
    const recorded = (JSON.parse(change.detail) as { monthlyCreditFen?: string | null }).monthlyCreditFen;
    if (recorded === undefined) continue;
    if (change.action === 'merchant.limits_changed') {
      source = recorded === value && source !== 'operator' ? 'unknown' : 'operator'; // a daily-limit change repeats the line
    } else if (value === undefined) {
      source = 'unknown'; // the value given at add, kept, or a first grant
    } else if (recorded !== value) {
      source = 'tax_service';
    }
    value = recorded;
  }
  return value === stored || value === undefined ? source : 'unknown';
}

export async function down(db: Kysely<any>): Promise<void> {
  // One column again, holding what bound: the lower of the two.
  await sql`update merchants set operator_credit_fen = granted_credit_fen
    where granted_credit_fen is not null and (operator_credit_fen is null or granted_credit_fen < operator_credit_fen)`.execute(db);
  await db.schema.alterTable('merchants').dropColumn('granted_credit_fen').execute();
  await db.schema.alterTable('merchants').renameColumn('operator_credit_fen', 'monthly_credit_fen').execute();
}
