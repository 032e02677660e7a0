// Per-merchant request signing, in the manner of the commercial Chinese invoicing APIs: every
// request carries the merchant's key id, a timestamp, a single-use nonce and an HMAC-SHA256 over
// method, path (with query), timestamp, nonce and the SHA-256 of the body. The tax service checks
// the signature, refuses timestamps more than five minutes off, and refuses a nonce seen before.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADERS = {
  key: 'x-fapiao-key',
  timestamp: 'x-fapiao-timestamp',
  nonce: 'x-fapiao-nonce',
  signature: 'x-fapiao-signature',
} as const;

/** How far a request's timestamp may be from the tax service's clock. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

export interface SigningKey {
  keyId: string;
  secret: string;
}

export interface SignedRequest {
  method: string;
  /** Path with query string, exactly as sent (e.g. "/sandbox/v1/sellers/9135…/accepted?date=2026-11-21"). */
  path: string;
  body: string | Buffer;
}

export function bodyDigest(body: string | Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

/** The text that is signed: one field per line, so no two requests sign the same text. */
export function stringToSign(method: string, path: string, timestamp: string, nonce: string, body: string | Buffer): string {
  return [method.toUpperCase(), path, timestamp, nonce, bodyDigest(body)].join('\n');
}

export function signature(secret: string, text: string): string {
  return createHmac('sha256', secret).update(text).digest('hex');
}

/** The headers that sign one request. */
export function signRequest(key: SigningKey, request: SignedRequest, now: number = Date.now(), nonce: string = randomBytes(16).toString('hex')): Record<string, string> {
  const timestamp = String(now);
  return {
    [SIGNATURE_HEADERS.key]: key.keyId,
    [SIGNATURE_HEADERS.timestamp]: timestamp,
    [SIGNATURE_HEADERS.nonce]: nonce,
    [SIGNATURE_HEADERS.signature]: signature(key.secret, stringToSign(request.method, request.path, timestamp, nonce, request.body)),
  };
}

export type SignatureProblem = 'SIGNATURE_MISSING' | 'KEY_UNKNOWN' | 'TIMESTAMP_SKEW' | 'SIGNATURE_INVALID';

export interface PresentedSignature {
  keyId: string;
  timestamp: string;
  nonce: string;
  signature: string;
}

/** Reads the signature headers; undefined when any is missing or malformed. */
export function presentedSignature(headers: Record<string, string | string[] | undefined>): PresentedSignature | undefined {
  const get = (name: string) => {
    const value = headers[name];
    return typeof value === 'string' ? value : undefined;
  };
  const keyId = get(SIGNATURE_HEADERS.key);
  const timestamp = get(SIGNATURE_HEADERS.timestamp);
  const nonce = get(SIGNATURE_HEADERS.nonce);
  const sig = get(SIGNATURE_HEADERS.signature);
  if (!keyId || !timestamp || !nonce || !sig) return undefined;
  if (!/^\d{1,16}$/.test(timestamp) || !/^[\w-]{8,64}$/.test(nonce) || !/^[0-9a-f]{64}$/.test(sig) || keyId.length > 100) return undefined;
  return { keyId, timestamp, nonce, signature: sig };
}

/** Checks a presented signature against the key's secret; the nonce's single use is the caller's to enforce. */
export function checkSignature(presented: PresentedSignature, secret: string, request: SignedRequest, now: number = Date.now()): SignatureProblem | undefined {
  if (Math.abs(now - Number(presented.timestamp)) > MAX_CLOCK_SKEW_MS) return 'TIMESTAMP_SKEW';
  const expected = Buffer.from(signature(secret, stringToSign(request.method, request.path, presented.timestamp, presented.nonce, request.body)), 'hex');
  const given = Buffer.from(presented.signature, 'hex');
  return expected.length === given.length && timingSafeEqual(expected, given) ? undefined : 'SIGNATURE_INVALID';
}
