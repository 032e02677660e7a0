// Signatures, check codes, masking and the QR URL: the small rules public verification rests on.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkCode, keyIdOf, maskTaxId, signDigest, verifyDigest } from '../../src/domain/signature.js';
import { parseVerifyToken, verifyUrl } from '../../src/documents/verify-url.js';
import { GENESIS_HASH, sealInvoice, type InvoiceContent } from '../../src/domain/invoice.js';

const digest = 'ab'.repeat(32);

describe('Ed25519 signatures of digests', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');

  it('verify with the signing key only, and only for the digest signed', () => {
    const signature = signDigest(privateKey, digest);
    expect(verifyDigest(publicKey, digest, signature)).toBe(true);
    expect(verifyDigest(publicKey, 'cd'.repeat(32), signature)).toBe(false);
    expect(verifyDigest(other.publicKey, digest, signature)).toBe(false);
    expect(verifyDigest(publicKey, digest, 'not base64 of 64 bytes')).toBe(false);
  });

  it('are deterministic, so the key holder can check one by signing again', () => {
    expect(signDigest(privateKey, digest)).toBe(signDigest(privateKey, digest));
  });

  it('name keys by 16 hex digits of the public key hash', () => {
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(keyIdOf(pem)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyIdOf(pem)).not.toBe(keyIdOf(other.publicKey.export({ type: 'spki', format: 'pem' }).toString()));
  });
});

describe('校验码 and masking', () => {
  it('check codes are 20 digits that change with the content', () => {
    expect(checkCode(digest)).toMatch(/^\d{20}$/);
    expect(checkCode(digest)).toBe(checkCode(digest));
    expect(checkCode(digest)).not.toBe(checkCode('cd'.repeat(32)));
  });

  it.each([
    ['91440300MA5F2K3L4X', '9144**********3L4X'],
    ['440301123456789', '4403*******6789'],
    ['1234567', '12*****'],
    ['', ''],
  ])('%s → %s', (id, masked) => expect(maskTaxId(id)).toBe(masked));
});

describe('the QR code URL', () => {
  const content: InvoiceContent = {
    kind: 'normal', pricesIncludeTax: false, remarks: '', number: '26441000000000000123', issuedAt: '2026-11-22T10:11:12+08:00', issuer: 'x',
    seller: { name: 's', taxId: '', address: '', phone: '', bank: '', account: '' }, buyer: { name: 'b', taxId: '', address: '', phone: '', bank: '', account: '', email: '' },
    lines: [], totalAmount: 100000n, totalTax: 13000n, totalWithTax: 113000n,
  };
  const invoice = sealInvoice('m', content, { hash: GENESIS_HASH, index: 0 });

  it('carries number, date, total in fen and check code, and parses back', () => {
    const url = verifyUrl('https://fapiao.example.cn/', invoice);
    expect(url).toBe(`https://fapiao.example.cn/v/26441000000000000123-20261122-113000-${checkCode(invoice.digest)}`);
    expect(parseVerifyToken(url.split('/v/')[1]!)).toEqual({ number: invoice.number, date: '2026-11-22', totalWithTax: 113000n, checkCode: checkCode(invoice.digest) });
  });

  it.each(['', 'x', '2644100000000000012-20261122-1-00000000000000000000', '26441000000000000123-2026112-1-00000000000000000000', '26441000000000000123-20261122-1-0000'])('refuses %j', (token) =>
    expect(parseVerifyToken(token)).toBeUndefined());
});
