// Table types for Kysely. Money columns hold integer fen; drivers hand them back as number
// (SQLite) or string (PostgreSQL bigint), so repositories convert with BigInt() when reading.
import type { Generated } from 'kysely';
import type { DeliveryTables } from './delivery-schema.js';
import type { DocumentTables } from './document-schema.js';

type Int64 = number | string | bigint;

export interface MerchantTable {
  id: string;
  name: string;
  tax_id: string;
  address: string;
  phone: string;
  bank: string;
  account: string;
  region_code: string;
  daily_invoice_limit: number | null;
  operator_credit_fen: Int64 | null; // the operator's own monthly limit (pre-tax fen); null = none
  granted_credit_fen: Int64 | null; // 授信额度 granted in the tax service's terms; null = none
  created_at: string;
  contingency_terms: string | null; // JSON ContingencyLimit[] from the tax service's terms; null = never fetched
  terms_fetched_at: string | null;
  offline_since: string | null; // in contingency since (离线); null = online
}

export interface InvoiceSeriesTable {
  merchant_id: string;
  year: number;
  last_sequence: number;
}

export interface ChainHeadTable {
  scope: string; // "invoices:<merchant>" or "audit:<merchant>"
  hash: string;
  length: number;
}

export interface InvoiceTable {
  merchant_id: string;
  number: string;
  kind: string;
  status: string;
  issued_at: string;
  issue_date: string;
  buyer_name: string;
  buyer_tax_id: string;
  total_amount: Int64;
  total_tax: Int64;
  total_with_tax: Int64;
  content: string; // the canonical JSON body of the invoice (lines, parties, …)
  digest: string;
  prev_hash: string;
  chain_hash: string;
  chain_index: number;
  void_reason: string | null;
  status_changed_at: string | null;
  signature?: string | null; // Ed25519, base64 (004-documents)
  signing_key_id?: string | null;
  uploaded_at?: string | null; // 010-void-report: kept for voided invoices only
  void_report?: string | null; // pending | reported | refused | not_needed; null = not voided
  void_report_at?: string | null;
  void_report_reason?: string | null;
}

/** `invoices` is a view (008-invoice-states): the sealed record joined with its lifecycle state. */
export type InvoiceRecordTable = Omit<InvoiceTable, 'status' | 'status_changed_at' | 'void_reason' | 'uploaded_at' | 'void_report' | 'void_report_at' | 'void_report_reason'>;

export interface InvoiceStateTable {
  merchant_id: string;
  number: string;
  status: string;
  status_changed_at: string | null;
  void_reason: string | null;
  uploaded_at?: string | null;
  void_report?: string | null;
  void_report_at?: string | null;
  void_report_reason?: string | null;
}

export interface IdempotencyKeyTable {
  merchant_id: string;
  key: string;
  request_hash: string;
  invoice_number: string;
  created_at: string;
}

export interface UsageTable {
  merchant_id: string;
  period: string; // "D2026-11-22" or "M2026-11"
  invoice_count: number;
  pre_tax_fen: Int64;
  since: string | null; // backlog rows: issue time of the oldest un-uploaded invoice
}

export interface NumberBlockTable {
  merchant_id: string;
  block_id: string;
  year: number;
  first_seq: Int64;
  last_seq: Int64;
  next_seq: Int64;
  source: string;
  granted_at: string;
}

export interface NumberBlockRequestTable {
  merchant_id: string;
  request_id: string;
  year: number;
  size: number;
  requested_at: string;
}

export interface InvoiceUploadTable {
  merchant_id: string;
  number: string;
  state: string;
  reason_code: string | null;
  reason: string | null;
  local_digest: string;
  held_digest: string | null;
  upstream_record: string | null;
  at: string;
}

export interface UpstreamStateTable {
  merchant_id: string;
  mode: string;
  since: string;
  last_error: string | null;
  last_success_at: string | null;
  warned_at: string | null;
  alerted_at: string | null;
}

export interface AuditTable {
  id: Generated<number>;
  merchant_id: string;
  at: string;
  actor: string;
  action: string;
  subject: string;
  detail: string;
  prev_hash: string;
  hash: string;
}

export interface OutboxTable {
  id: Generated<number>;
  merchant_id: string;
  topic: string;
  subject: string;
  payload: string;
  created_at: string;
  available_at: string;
  attempts: number;
  lease_owner: string | null;
  lease_until: string | null;
  done_at: string | null;
}

/** What an upload job sends (the record's JSON as the upload request carries it), until the job completes. */
export interface UploadRecordTable {
  job_id: number;
  merchant_id: string;
  record: string;
  kind: string;
  pre_tax_fen: number | string | bigint;
  digest: string;
}

export interface UserTable {
  id: string;
  merchant_id: string;
  username: string;
  password_hash: string;
  role: string;
  failed_attempts: number;
  locked_until: string | null;
  created_at: string;
}

export interface SessionTable {
  token_hash: string;
  user_id: string;
  expires_at: string;
  created_at: string;
}

export interface ApiKeyTable {
  id: string;
  merchant_id: string;
  role: string;
  label: string;
  secret_hash: string;
  created_at: string;
  revoked_at: string | null;
}

export interface SavedBuyerTable {
  id: string;
  merchant_id: string;
  name: string;
  tax_id: string;
  address: string;
  phone: string;
  bank: string;
  account: string;
  email: string;
  updated_at: string;
}

export interface SavedItemTable {
  id: string;
  merchant_id: string;
  name: string;
  tax_code: string;
  spec: string;
  unit: string;
  unit_price: string;
  tax_rate: string;
  updated_at: string;
}

export interface HeartbeatTable {
  instance: string;
  at: string;
}

export interface UpstreamCredentialTable {
  seller_tax_id: string;
  upstream_url: string;
  key_id: string;
  secret: string;
  created_at: string;
}

export interface AlertTable {
  id: Generated<number>;
  merchant_id: string;
  kind: string;
  severity: string;
  subject: string;
  detail: string;
  at: string;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
}

export interface ReconciliationTable {
  id: string;
  merchant_id: string;
  date: string;
  ran_at: string;
  actor: string;
  local_count: number;
  upstream_count: number;
  matched: number;
  pending: number;
  differences: number;
}

export interface ReconciliationItemTable {
  id: Generated<number>;
  reconciliation_id: string;
  merchant_id: string;
  number: string;
  difference: string;
  local_digest: string | null;
  upstream_digest: string | null;
  local_status: string | null;
  resolution: string | null;
  resolved_at: string | null;
  resolved_by: string | null;
  note: string | null;
}

export interface JobLeaseTable {
  name: string;
  owner: string | null;
  lease_until: string | null;
  last_done: string | null;
}

export interface Database extends DeliveryTables, DocumentTables {
  heartbeats: HeartbeatTable;
  merchants: MerchantTable;
  invoice_series: InvoiceSeriesTable;
  chain_heads: ChainHeadTable;
  invoices: InvoiceTable;
  invoice_records: InvoiceRecordTable;
  invoice_states: InvoiceStateTable;
  idempotency_keys: IdempotencyKeyTable;
  usage: UsageTable;
  audit_log: AuditTable;
  outbox: OutboxTable;
  upload_records: UploadRecordTable;
  users: UserTable;
  sessions: SessionTable;
  api_keys: ApiKeyTable;
  saved_buyers: SavedBuyerTable;
  saved_items: SavedItemTable;
  number_blocks: NumberBlockTable;
  number_block_requests: NumberBlockRequestTable;
  invoice_uploads: InvoiceUploadTable;
  upstream_state: UpstreamStateTable;
  upstream_credentials: UpstreamCredentialTable;
  alerts: AlertTable;
  reconciliations: ReconciliationTable;
  reconciliation_items: ReconciliationItemTable;
  job_leases: JobLeaseTable;
}
