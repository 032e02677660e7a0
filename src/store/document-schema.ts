// Tables of documents and verification (migration 004-documents).

export interface SigningKeyTable {
  id: string; // first 16 hex digits of SHA-256 of the SPKI public key
  algorithm: string; // "Ed25519"
  public_key: string; // SPKI PEM
  created_at: string;
  retired_at: string | null; // set when a newer key took over; still valid for old signatures
}

export interface VerificationCountTable {
  merchant_id: string;
  number: string;
  day: string; // Shanghai date
  count: number;
}

export interface DocumentTables {
  signing_keys: SigningKeyTable;
  verification_counts: VerificationCountTable;
}
