// Repositories for signing keys and public verification. Part of `Repositories` (ports.ts),
// implemented in src/store/document-repositories.ts for both dialects.
import type { Invoice } from '../domain/invoice.js';
import type { InvoiceSignature } from '../domain/signature.js';

export interface SigningKeyRecord {
  id: string;
  algorithm: 'Ed25519';
  publicKeyPem: string;
  createdAt: string;
  retiredAt: string | null;
}

/** Signs content digests at issue time with the platform's current key. */
export interface InvoiceSigner {
  sign(digest: string): InvoiceSignature;
  /** The id of the key sign() uses now. */
  keyId(): string;
}

export interface DocumentRepositories {
  signingKeys: {
    /** Adds a public key; a key already known is left as it is. */
    register(key: SigningKeyRecord): Promise<void>;
    retireOthers(currentId: string, at: string): Promise<void>;
    list(): Promise<SigningKeyRecord[]>;
  };
  verification: {
    /**
     * Invoices with this number, of any merchant (numbers are unique per merchant only), each
     * with its count of verifications on the day: one statement for the whole public lookup.
     */
    invoicesByNumber(number: string, day: string): Promise<Array<{ invoice: Invoice; verifiedOnDay: number }>>;
    /** Adds verifications of the invoice on the day and gives the day's count with them. */
    add(merchantId: string, number: string, day: string, count: number): Promise<number>;
    /** The day's count so far (0 when none). */
    current(merchantId: string, number: string, day: string): Promise<number>;
    purgeBefore(day: string): Promise<number>;
  };
}
