// What printing, delivery and export need from the store (src/store/delivery-repositories.ts).
// Every query takes the merchant from the caller, except the few the background workers use by id.
import type { Delivery, DeliveryAttempt } from '../domain/delivery.js';
import type { PrintJob, PrintJobState } from '../domain/print-job.js';

export type PrinterBackend = 'cups' | 'directory';
export type PrinterHealth = 'unknown' | 'ok' | 'failing';

export interface PrinterRecord {
  id: string;
  merchantId: string;
  name: string;
  backend: PrinterBackend;
  /** The CUPS queue name, or the directory path. */
  target: string;
  backupPrinterId: string | null;
  /** Invoices are printed here as soon as they are issued. */
  isDefault: boolean;
  health: PrinterHealth;
  healthDetail: string;
  healthAt: string | null;
  createdAt: string;
}

export interface WebhookEndpointRecord {
  id: string;
  merchantId: string;
  url: string;
  /** The HMAC key; shown once when created, never logged. */
  secret: string;
  events: string[];
  enabled: boolean;
  description: string;
  createdAt: string;
}

/**
 * Optional settings of printing that the server passes along with the ports: hot-folder printers
 * must lie inside this directory (FAPIAO_PRINT_DIR), so a merchant cannot make the server write
 * files anywhere else on its disk.
 */
export interface PrintingPorts {
  printDirectoryRoot?: string;
  /** False when the server has no SMTP server (FAPIAO_SMTP_URL): asking for email is then refused at once (6034). */
  emailEnabled?: boolean;
}

export interface DeliverySettings {
  merchantId: string;
  /** Email each issued invoice to the buyer's address, when it has one. */
  emailBuyer: boolean;
  /** The chain index of the last issued invoice whose deliveries were created (the fan-out cursor). */
  fanoutIndex: number;
  updatedAt: string;
}

export interface DeliveryQuery {
  channel?: 'webhook' | 'email';
  endpointId?: string;
  subject?: string;
  state?: Delivery['state'];
  /** Older than this delivery's creation (pages newest first). */
  before?: { createdAt: string; id: string };
  limit: number;
}

export interface PrintJobQuery {
  invoiceNumber?: string;
  printerId?: string;
  state?: PrintJobState;
  before?: { createdAt: string; id: string };
  limit: number;
}

export interface DeliveryRepositories {
  printers: {
    insert(printer: PrinterRecord): Promise<void>;
    get(merchantId: string, id: string): Promise<PrinterRecord | undefined>;
    findByName(merchantId: string, name: string): Promise<PrinterRecord | undefined>;
    list(merchantId: string): Promise<PrinterRecord[]>;
    update(printer: PrinterRecord): Promise<void>;
    /** Makes `id` the merchant's only default printer (null: none). */
    setDefault(merchantId: string, id: string | null): Promise<void>;
    findDefault(merchantId: string): Promise<PrinterRecord | undefined>;
    setHealth(merchantId: string, id: string, health: PrinterHealth, detail: string, at: string): Promise<void>;
    delete(merchantId: string, id: string): Promise<boolean>;
    /** Printers naming `id` as their backup. */
    backedUpBy(merchantId: string, id: string): Promise<PrinterRecord[]>;
  };
  printJobs: {
    insert(job: PrintJob): Promise<void>;
    get(merchantId: string, id: string): Promise<PrintJob | undefined>;
    list(merchantId: string, query: PrintJobQuery): Promise<PrintJob[]>;
    /** Writes the job's new state only if it is still in `expected` (a guard against a second worker). */
    save(job: PrintJob, expected: PrintJobState): Promise<boolean>;
    countActive(merchantId: string, printerId: string): Promise<number>;
  };
  webhookEndpoints: {
    insert(endpoint: WebhookEndpointRecord): Promise<void>;
    get(merchantId: string, id: string): Promise<WebhookEndpointRecord | undefined>;
    list(merchantId: string): Promise<WebhookEndpointRecord[]>;
    update(endpoint: WebhookEndpointRecord): Promise<void>;
    delete(merchantId: string, id: string): Promise<boolean>;
  };
  deliveries: {
    insert(delivery: Delivery): Promise<void>;
    get(merchantId: string, id: string): Promise<Delivery | undefined>;
    list(merchantId: string, query: DeliveryQuery): Promise<Delivery[]>;
    /** Writes the new state only if the stored one still has `expectedAttempts` attempts and is `expectedState`. */
    save(delivery: Delivery, expected: { state: Delivery['state']; attempts: number }): Promise<boolean>;
    appendAttempt(attempt: DeliveryAttempt): Promise<void>;
    attempts(merchantId: string, deliveryId: string): Promise<DeliveryAttempt[]>;
  };
  deliverySettings: {
    get(merchantId: string): Promise<DeliverySettings | undefined>;
    /** Creates the row (cursor at `fanoutIndex`) or changes the options, keeping the cursor. */
    upsert(settings: DeliverySettings): Promise<void>;
    list(): Promise<DeliverySettings[]>;
    /** Merchants whose invoice chain has grown past their fan-out cursor: one indexed query, whatever the number of merchants. */
    behind(): Promise<DeliverySettings[]>;
    /** Moves the fan-out cursor from `from` to `to`; false when another process moved it first. */
    advance(merchantId: string, from: number, to: number, at: string): Promise<boolean>;
  };
}
