// Repositories for the tax-service side of Fapiao: signing credentials, alerts, reconciliation
// reports and job leases. Part of `Repositories` (ports.ts), implemented in
// src/store/upstream-repositories.ts for both dialects.

export type AlertSeverity = 'info' | 'warning' | 'critical';

export interface AlertRecord {
  id: number;
  merchantId: string;
  /** What kind of thing happened, dotted: 'reconciliation.mismatch', 'upload.conflict', 'contingency.limit_near', … */
  kind: string;
  severity: AlertSeverity;
  /** What it is about: an invoice number, a date, a report id. */
  subject: string;
  detail: Record<string, unknown>;
  at: string;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
}

export interface UpstreamCredential {
  sellerTaxId: string;
  upstreamUrl: string;
  keyId: string;
  secret: string;
  createdAt: string;
}

export type ReconciliationDifference = 'missing_upstream' | 'missing_locally' | 'digest_mismatch';
export type ReconciliationResolution = 'reuploaded' | 'investigated';

export interface ReconciliationItem {
  id: number;
  reconciliationId: string;
  number: string;
  difference: ReconciliationDifference;
  localDigest: string | null;
  upstreamDigest: string | null;
  localStatus: string | null;
  resolution: ReconciliationResolution | null;
  resolvedAt: string | null;
  resolvedBy: string | null;
  note: string | null;
}

export interface ReconciliationReport {
  id: string;
  merchantId: string;
  /** The Shanghai calendar date reconciled. */
  date: string;
  ranAt: string;
  actor: string;
  localCount: number;
  upstreamCount: number;
  matched: number;
  /** Issued locally and not yet uploaded: on their way, not differences. */
  pending: number;
  differences: number;
}

export interface UpstreamRepositories {
  alerts: {
    insert(alert: Omit<AlertRecord, 'id' | 'acknowledgedAt' | 'acknowledgedBy'>): Promise<number>;
    /** Newest first; `beforeId` pages on. */
    list(merchantId: string, filter: { beforeId?: number; kind?: string; unacknowledged?: boolean }, limit: number): Promise<AlertRecord[]>;
    acknowledge(merchantId: string, id: number, by: string, at: string): Promise<boolean>;
  };
  upstreamCredentials: {
    get(sellerTaxId: string, upstreamUrl: string): Promise<UpstreamCredential | undefined>;
    /** Stores the credential unless one is already there; returns the one that is stored. */
    insertIfAbsent(credential: UpstreamCredential): Promise<UpstreamCredential>;
    remove(sellerTaxId: string, upstreamUrl: string): Promise<void>;
  };
  reconciliations: {
    insert(report: ReconciliationReport, items: ReadonlyArray<Omit<ReconciliationItem, 'id' | 'reconciliationId' | 'resolution' | 'resolvedAt' | 'resolvedBy' | 'note'>>): Promise<void>;
    get(merchantId: string, id: string): Promise<ReconciliationReport | undefined>;
    list(merchantId: string, filter: { date?: string }, limit: number): Promise<ReconciliationReport[]>;
    items(merchantId: string, reconciliationId: string): Promise<ReconciliationItem[]>;
    item(merchantId: string, itemId: number): Promise<ReconciliationItem | undefined>;
    /** Records how a difference was resolved; false when it was already resolved. */
    resolve(merchantId: string, itemId: number, resolution: { resolution: ReconciliationResolution; at: string; by: string; note: string | null }): Promise<boolean>;
  };
  /** Leases of every kind (outbox jobs, named jobs), by holder: to end those of a process that is gone. */
  leases: {
    /** Owners holding a lease that has not run out at `now`. */
    holders(now: string): Promise<string[]>;
    /** Ends every lease these owners hold, as if it had run out at `now`; how many were ended. */
    expire(owners: string[], now: string): Promise<number>;
  };
  /** One-at-a-time work across instances: a lease per job name, and the last run it finished. */
  jobLeases: {
    /** Takes the lease when free or expired; returns the job's last finished run key, or false when another holds it. */
    acquire(name: string, owner: string, now: string, leaseUntil: string): Promise<{ lastDone: string | null } | false>;
    finish(name: string, owner: string, doneKey: string): Promise<void>;
    release(name: string, owner: string): Promise<void>;
  };
}
