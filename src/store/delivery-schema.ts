// Table types of printing and delivery (migration 005-delivery), part of `Database` in schema.ts.
import type { Generated } from 'kysely';

type Int64 = number | string | bigint;

export interface PrinterTable {
  id: string;
  merchant_id: string;
  name: string;
  backend: string;
  target: string;
  backup_printer_id: string | null;
  is_default: number;
  health: string;
  health_detail: string;
  health_at: string | null;
  created_at: string;
}

export interface PrintJobTable {
  id: string;
  merchant_id: string;
  invoice_number: string;
  printer_id: string;
  original_printer_id: string;
  state: string;
  attempts: number;
  total_attempts: number;
  external_id: string | null;
  last_error: string | null;
  next_attempt_at: string;
  created_at: string;
  updated_at: string;
  submitted_at: string | null;
  printed_at: string | null;
  moved_at: string | null;
  requested_by: string;
}

export interface WebhookEndpointTable {
  id: string;
  merchant_id: string;
  url: string;
  secret: string;
  events: string; // comma-separated
  enabled: number;
  description: string;
  created_at: string;
}

export interface DeliveryTable {
  id: string;
  merchant_id: string;
  channel: string;
  endpoint_id: string | null;
  recipient: string;
  event: string;
  subject: string;
  payload: string;
  state: string;
  attempts: number;
  window_started_at: string;
  next_attempt_at: string;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
  redeliveries: number;
}

export interface DeliveryAttemptTable {
  id: Generated<number>;
  delivery_id: string;
  merchant_id: string;
  at: string;
  outcome: string;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
}

export interface DeliverySettingsTable {
  merchant_id: string;
  email_buyer: number;
  fanout_index: Int64;
  updated_at: string;
}

export interface DeliveryTables {
  printers: PrinterTable;
  print_jobs: PrintJobTable;
  webhook_endpoints: WebhookEndpointTable;
  deliveries: DeliveryTable;
  delivery_attempts: DeliveryAttemptTable;
  delivery_settings: DeliverySettingsTable;
}
