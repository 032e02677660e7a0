// Request signing: HMAC-SHA256 over method, path, timestamp, nonce and the body's SHA-256, with
// the merchant's secret. Any change to any of them, another secret, or an old timestamp is refused.
import { createHmac, createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkSignature, MAX_CLOCK_SKEW_MS, presentedSignature, signRequest, stringToSign } from '../../src/upstream/signing.js';

const key = { keyId: 'sk_0123456789abcdef', secret: 's3cret-of-the-merchant' };
const request = { method: 'POST', path: '/sandbox/v1/sellers/91350100M000100Y43/uploads', body: '{"records":[]}' };
const now = Date.parse('2026-11-22T02:00:00Z');

describe('request signing', () => {
  it('signs exactly the documented text', () => {
    const headers = signRequest(key, request, now, 'nonce-0001');
    const text = ['POST', request.path, String(now), 'nonce-0001', createHash('sha256').update(request.body).digest('hex')].join('\n');
    expect(stringToSign('post', request.path, String(now), 'nonce-0001', request.body)).toBe(text);
    expect(headers).toEqual({
      'x-fapiao-key': key.keyId,
      'x-fapiao-timestamp': String(now),
      'x-fapiao-nonce': 'nonce-0001',
      'x-fapiao-signature': createHmac('sha256', key.secret).update(text).digest('hex'),
    });
  });

  it('accepts its own signature and uses a new nonce each time', () => {
    const a = signRequest(key, request, now);
    const b = signRequest(key, request, now);
    expect(a['x-fapiao-nonce']).not.toBe(b['x-fapiao-nonce']);
    expect(checkSignature(presentedSignature(a)!, key.secret, request, now)).toBeUndefined();
  });

  it.each([
    ['another method', { ...request, method: 'PUT' }],
    ['another path', { ...request, path: request.path.replace('Y43', 'Y44') }],
    ['another query', { ...request, path: `${request.path}?x=1` }],
    ['another body', { ...request, body: '{"records":[1]}' }],
  ])('refuses a request with %s', (_name, changed) => {
    const presented = presentedSignature(signRequest(key, request, now))!;
    expect(checkSignature(presented, key.secret, changed, now)).toBe('SIGNATURE_INVALID');
  });

  it('refuses another secret', () => {
    expect(checkSignature(presentedSignature(signRequest(key, request, now))!, 'another secret', request, now)).toBe('SIGNATURE_INVALID');
  });

  it('refuses a timestamp more than five minutes off, either way', () => {
    const presented = presentedSignature(signRequest(key, request, now))!;
    expect(checkSignature(presented, key.secret, request, now + MAX_CLOCK_SKEW_MS)).toBeUndefined();
    expect(checkSignature(presented, key.secret, request, now + MAX_CLOCK_SKEW_MS + 1)).toBe('TIMESTAMP_SKEW');
    expect(checkSignature(presented, key.secret, request, now - MAX_CLOCK_SKEW_MS - 1)).toBe('TIMESTAMP_SKEW');
  });

  it('reads only well-formed signature headers', () => {
    const good = signRequest(key, request, now);
    expect(presentedSignature(good)).toBeDefined();
    expect(presentedSignature({ ...good, 'x-fapiao-signature': undefined })).toBeUndefined();
    expect(presentedSignature({ ...good, 'x-fapiao-signature': 'zz' })).toBeUndefined();
    expect(presentedSignature({ ...good, 'x-fapiao-timestamp': 'yesterday' })).toBeUndefined();
    expect(presentedSignature({ ...good, 'x-fapiao-nonce': 'short' })).toBeUndefined();
  });
});
