// Invoice signatures (R22): the platform signs the content digest of every invoice with Ed25519
// when it is issued. Anyone holding the platform's public key can then tell a genuine invoice
// file from a forged or altered one without asking the server. Keys are identified by a short
// id (the first 16 hex digits of the SHA-256 of the public key), so old signatures stay
// verifiable after a rotation.
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export interface InvoiceSignature {
  keyId: string;
  /** Ed25519 signature of signingMessage(digest), base64. */
  value: string;
}

export const SIGNATURE_ALGORITHM = 'Ed25519';

/** What is signed: a domain-separated statement of the digest, never bare bytes. */
export function signingMessage(digest: string): Buffer {
  return Buffer.from(`fapiao-invoice-signature/1\n${digest}`, 'utf8');
}

export function signDigest(privateKey: KeyObject, digest: string): string {
  return sign(null, signingMessage(digest), privateKey).toString('base64');
}

export function verifyDigest(publicKey: KeyObject, digest: string, signature: string): boolean {
  const bytes = Buffer.from(signature, 'base64');
  if (bytes.length !== 64) return false;
  return verify(null, signingMessage(digest), publicKey, bytes);
}

export function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

/**
 * 校验码: 20 digits printed on the invoice and asked for by public verification, so that knowing
 * an invoice number alone is not enough to query it. Derived from the content digest, like the
 * official check code is derived from the invoice content.
 */
export function checkCode(digest: string): string {
  const value = BigInt(`0x${createHash('sha256').update(`fapiao-check-code/1\n${digest}`).digest('hex').slice(0, 24)}`);
  return (value % 10n ** 20n).toString().padStart(20, '0');
}

/** 校验码 as printed on the invoice, in groups of five digits: "35650 02747 80224 23158". */
export function printedCheckCode(code: string): string {
  return code.replace(/(\d{5})(?=\d)/g, '$1 ');
}

/**
 * 校验码 as a person types it from the page: the spaces of the printed groups, or whatever
 * whitespace they became on the way (a tab, a full-width or no-break space), are dropped.
 */
export function typedCheckCode(text: string): string {
  return text.replace(/\s+/g, '');
}

/** 91440300MA5FXXXX12 → 9144********XXXX12: enough for a verifier to recognise, not to copy. */
export function maskTaxId(taxId: string): string {
  if (taxId.length <= 8) return `${taxId.slice(0, 2)}${'*'.repeat(Math.max(0, taxId.length - 2))}`;
  return `${taxId.slice(0, 4)}${'*'.repeat(taxId.length - 8)}${taxId.slice(-4)}`;
}
