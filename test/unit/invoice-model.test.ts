import { describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { chainLink, contentDigest, GENESIS_HASH, invoiceContent, sealInvoice, type InvoiceContent } from '../../src/domain/invoice.js';
import { signDigest, verifyDigest } from '../../src/domain/signature.js';
import { checkVoidable, nextStatus } from '../../src/domain/invoice-state.js';
import { invoiceNumber, isInvoiceNumber, validateRegionCode } from '../../src/domain/numbering.js';
import { Fault } from '../../src/domain/faults.js';

const content = (overrides: Partial<InvoiceContent> = {}): InvoiceContent => ({
  number: '26351000000000000001',
  kind: 'normal',
  issuedAt: '2026-11-22T08:00:00.000+08:00',
  pricesIncludeTax: false,
  remarks: '',
  issuer: 'clerk1',
  seller: { name: '卖方', taxId: '91350100M000100Y43', address: '', phone: '', bank: '', account: '' },
  buyer: { name: '买方', taxId: '', address: '', phone: '', bank: '', account: '', email: '' },
  lines: [{ name: '*信息技术服务*软件开发', taxCode: '3040201000000000000', spec: '', unit: '项', quantity: '1', unitPrice: '1000', taxRate: '0.06', amount: 100000n, tax: 6000n }],
  totalAmount: 100000n,
  totalTax: 6000n,
  totalWithTax: 106000n,
  ...overrides,
});

const codeOf = (work: () => unknown) => {
  try {
    work();
  } catch (error) {
    return (error as Fault).spec.code;
  }
  return undefined;
};

describe('content digest', () => {
  it('is the same for the same content and differs when any printed field changes', () => {
    const base = contentDigest(content());
    expect(contentDigest(content())).toBe(base);
    expect(contentDigest(content({ totalWithTax: 106001n }))).not.toBe(base);
    expect(contentDigest(content({ remarks: ' ' }))).not.toBe(base);
    expect(contentDigest(content({ buyer: { ...content().buyer, name: '买方 ' } }))).not.toBe(base);
    expect(contentDigest(content({ lines: [{ ...content().lines[0]!, tax: 6001n }] }))).not.toBe(base);
  });
});

describe('hash chain', () => {
  it('links the first invoice to the genesis hash and each next one to its predecessor', () => {
    const first = sealInvoice('m1', content(), { hash: GENESIS_HASH, index: 0 });
    expect(first.chainIndex).toBe(1);
    expect(first.prevHash).toBe(GENESIS_HASH);
    expect(first.chainHash).toBe(chainLink(GENESIS_HASH, first.digest));
    const second = sealInvoice('m1', content({ number: '26351000000000000002' }), { hash: first.chainHash, index: 1 });
    expect(second.chainIndex).toBe(2);
    expect(second.prevHash).toBe(first.chainHash);
    expect(second.status).toBe('issued');
  });
});

describe('sealing', () => {
  // Both are written field by field (for speed, see invoice.ts): a field added to the types must be added there too.
  it('makes the content from every field of the draft and what issuing adds', () => {
    const { number, issuedAt, seller, issuer, ...draft } = content();
    expect(invoiceContent(draft, { number, issuedAt, seller, issuer })).toStrictEqual(content());
  });

  it('keeps every field of the content, unsigned without a signer', () => {
    const sealed = sealInvoice('m1', content(), { hash: GENESIS_HASH, index: 0 });
    expect(sealed).toStrictEqual({
      ...content(), merchantId: 'm1', status: 'issued', digest: contentDigest(content()), prevHash: GENESIS_HASH,
      chainHash: chainLink(GENESIS_HASH, contentDigest(content())), chainIndex: 1, voidReason: null, statusChangedAt: null,
    });
    expect('signature' in sealed).toBe(false);
  });

  it('signs the digest when given a signer', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const sealed = sealInvoice('m1', content(), { hash: GENESIS_HASH, index: 0 }, (digest) => ({ keyId: 'k1', value: signDigest(privateKey, digest) }));
    expect(sealed.signature?.keyId).toBe('k1');
    expect(verifyDigest(publicKey, contentDigest(content()), sealed.signature!.value)).toBe(true);
  });
});

describe('invoice states', () => {
  it.each([
    ['issued', 'void', 'voided'],
    ['uploaded', 'void', 'voided'],
    ['rejected', 'void', 'voided'],
    ['issued', 'upload_accepted', 'uploaded'],
    ['issued', 'upload_rejected', 'rejected'],
    ['uploaded', 'reverse', 'reversed'],
  ] as const)('%s --%s--> %s', (status, event, next) => {
    expect(nextStatus({ number: 'n', status }, event)).toBe(next);
  });

  it.each([
    ['voided', 'void'],
    ['reversed', 'void'],
    ['issued', 'reverse'],
    ['voided', 'upload_accepted'],
  ] as const)('%s refuses %s with 3005', (status, event) => {
    expect(codeOf(() => nextStatus({ number: 'n', status }, event))).toBe(3005);
  });

  it('voids only within the Shanghai calendar month of issue', () => {
    const invoice = { number: 'n', status: 'issued' as const, issuedAt: '2026-03-31T23:59:00.000+08:00' };
    expect(checkVoidable(invoice, new Date('2026-03-31T15:59:59Z'))).toBe('voided'); // 23:59:59 in Shanghai
    expect(codeOf(() => checkVoidable(invoice, new Date('2026-03-31T16:00:00Z')))).toBe(3007); // already April there
  });
});

describe('invoice numbers', () => {
  it('are 20 digits: year, region, channel, 15-digit sequence', () => {
    expect(invoiceNumber(2026, '44', 1)).toBe('26441000000000000001');
    expect(invoiceNumber(2030, '11', 999_999_999_999_999)).toBe('30111999999999999999');
    expect(isInvoiceNumber('26441000000000000001')).toBe(true);
    expect(isInvoiceNumber('2644100000000000001')).toBe(false);
  });

  it('refuse a sequence outside the 15 digits', () => {
    expect(() => invoiceNumber(2026, '44', 0)).toThrow(RangeError);
    expect(() => invoiceNumber(2026, '44', 1_000_000_000_000_000)).toThrow(RangeError);
  });

  it.each(['1', '4a', '00', '99', '１１'])('refuse region code %s with 1020', (code) => {
    expect(codeOf(() => validateRegionCode(code))).toBe(1020);
  });
});
