// 查验 (R22): public verification of an invoice by number, date, 价税合计 and 校验码, as typed on
// /verify, posted to /api/v1/verify or carried by the QR code. Answers genuine, voided, reversed
// or unknown and shows only what a verifier needs (the buyer's tax ID masked). Each invoice may
// be verified VERIFY_LIMIT_PER_DAY times a day, as on the national platform.
//
// Also the offline check of a signed invoice file (`fapiao verify <file>`), against public keys.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { bilingual, Fault, faults, withOriginal } from '../domain/faults.js';
import { contentDigest, type Invoice, type InvoiceKind, type InvoiceStatus } from '../domain/invoice.js';
import { checkCode, maskTaxId, verifyDigest } from '../domain/signature.js';
import { shanghaiDate } from '../domain/time.js';
import { contentOf, recomputedDigest, type InvoiceFile } from '../documents/invoice-file.js';
import type { InvoiceSigner, SigningKeyRecord } from './document-ports.js';
import type { Ports } from './ports.js';
import { VerificationCounter } from './verification-counter.js';

export const VERIFY_LIMIT_PER_DAY = 5;

export interface VerifyRequest {
  number: string;
  date: string; // yyyy-mm-dd, the issue date
  totalWithTax: bigint; // 价税合计, fen
  checkCode: string; // 20 digits
}

export type VerifyResult = 'genuine' | 'voided' | 'reversed' | 'unknown';

export interface VerifiedInvoice {
  number: string;
  kind: InvoiceKind;
  issueDate: string;
  sellerName: string;
  sellerTaxId: string;
  buyerName: string;
  buyerTaxIdMasked: string;
  totalAmount: bigint;
  totalTax: bigint;
  totalWithTax: bigint;
  statusChangedAt: string | null;
  signed: boolean;
  verificationsToday: number;
}

export interface VerifyAnswer {
  result: VerifyResult;
  /** Only when the invoice was found: unknown answers say nothing about what exists. */
  invoice?: VerifiedInvoice;
}

const resultOf: Record<InvoiceStatus, VerifyResult> = {
  issued: 'genuine',
  uploaded: 'genuine',
  voided: 'voided',
  reversed: 'reversed',
  rejected: 'unknown', // the tax service refused it: not a valid invoice
};

/** What verification keeps between requests: the parsed public keys and the day's counters. */
export interface Verifier {
  keys: PublicKeys;
  counter: VerificationCounter;
}

export function createVerifier(ports: Ports): Verifier {
  return { keys: PublicKeys.fromStore(ports, ports.signer), counter: new VerificationCounter(ports) };
}

export async function verifyInvoice(ports: Ports, { keys, counter }: Verifier, request: VerifyRequest): Promise<VerifyAnswer> {
  const today = shanghaiDate(ports.clock.now());
  const candidates = await ports.store.read.verification.invoicesByNumber(request.number, today);
  // Every field must match; which one did not is never said, so nobody can probe field by field.
  const found = candidates.find(
    ({ invoice: i }) => i.issuedAt.slice(0, 10) === request.date && i.totalWithTax === request.totalWithTax && checkCode(i.digest) === request.checkCode,
  );
  if (!found) return { result: 'unknown' };
  const { invoice } = found;

  const count = await counter.count(invoice.merchantId, invoice.number, today, found.verifiedOnDay);
  if (count > VERIFY_LIMIT_PER_DAY) throw new Fault(faults.VERIFICATION_LIMIT_REACHED, { limit: String(VERIFY_LIMIT_PER_DAY) });

  // A row changed behind the application's back is not vouched for, whatever its status says.
  if (!(await isIntact(invoice, keys))) return { result: 'unknown' };
  return {
    result: resultOf[invoice.status],
    invoice: {
      number: invoice.number,
      kind: invoice.kind,
      issueDate: invoice.issuedAt.slice(0, 10),
      sellerName: invoice.seller.name,
      sellerTaxId: invoice.seller.taxId,
      buyerName: invoice.buyer.name,
      buyerTaxIdMasked: maskTaxId(invoice.buyer.taxId),
      totalAmount: invoice.totalAmount,
      totalTax: invoice.totalTax,
      totalWithTax: invoice.totalWithTax,
      statusChangedAt: invoice.statusChangedAt,
      signed: Boolean(invoice.signature),
      verificationsToday: count,
    },
  };
}

async function isIntact(invoice: Invoice, keys: PublicKeys): Promise<boolean> {
  if (contentDigest(invoice) !== invoice.digest) return false;
  if (!invoice.signature) return true; // issued before signing existed; the hash chain vouches for it
  return keys.holds(invoice.signature, invoice.digest);
}

const RELOAD_INTERVAL_MS = 1_000;

/** The platform's public keys, parsed once; reloaded from the store when an unknown id turns up. */
export class PublicKeys {
  private keys = new Map<string, KeyObject>();
  private loadedAt = 0;

  constructor(
    private readonly load: () => Promise<SigningKeyRecord[]>,
    private readonly signer?: InvoiceSigner,
    /** Remember results (public lookups repeat; a chain walk never does). */
    private readonly remember = true,
  ) {}

  /** With the signer of this process, its own signatures are checked by signing again (below). */
  static fromStore(ports: Ports, signer?: InvoiceSigner, remember = true): PublicKeys {
    return new PublicKeys(() => ports.store.read.signingKeys.list(), signer, remember);
  }

  static fromRecords(records: SigningKeyRecord[]): PublicKeys {
    return new PublicKeys(async () => records);
  }

  /**
   * Whether the signature is the platform's for this digest. Results are remembered (digest,
   * key and signature together are the key): an invoice never changes, and an altered row has
   * another digest, so the check above it still catches it.
   */
  async holds(signature: { keyId: string; value: string }, digest: string): Promise<boolean> {
    const memo = `${signature.keyId}:${digest}:${signature.value}`;
    const known = this.checked.get(memo);
    if (known !== undefined) return known;
    let holds: boolean;
    if (this.signer && this.signer.keyId() === signature.keyId) {
      // Ed25519 signatures are deterministic (RFC 8032): the holder of the private key checks one
      // by making it again and comparing, three times cheaper than verifying.
      const again = this.signer.sign(digest);
      holds = again.keyId === signature.keyId ? again.value === signature.value : await this.verifies(signature, digest);
    } else {
      holds = await this.verifies(signature, digest);
    }
    if (!this.remember) return holds;
    if (this.checked.size >= 100_000) this.checked.clear();
    if (holds || this.keys.has(signature.keyId)) this.checked.set(memo, holds); // an unknown key may be registered later
    return holds;
  }

  private async verifies(signature: { keyId: string; value: string }, digest: string): Promise<boolean> {
    const key = await this.get(signature.keyId);
    return key !== undefined && verifyDigest(key, digest, signature.value);
  }

  private checked = new Map<string, boolean>();

  private reloading: Promise<void> | undefined;

  async get(id: string): Promise<KeyObject | undefined> {
    const known = this.keys.get(id);
    if (known) return known;
    await this.reload();
    return this.keys.get(id);
  }

  /**
   * One reload at a time and at most one a second, so a flood of made-up key ids cannot flood the
   * database; whoever asks meanwhile waits for the next one rather than being told a key another
   * instance has just made does not exist.
   */
  private reload(): Promise<void> {
    this.reloading ??= (async () => {
      try {
        const wait = this.loadedAt + RELOAD_INTERVAL_MS - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        this.loadedAt = Date.now();
        this.keys = new Map((await this.load()).map((k) => [k.id, createPublicKey(k.publicKeyPem)]));
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }
}

export interface FileCheck {
  number: string;
  keyId: string;
  digest: string;
  totalWithTax: bigint;
}

/** `fapiao verify <file>`: the file's content must hash to its digest, signed by a known key. */
export async function checkInvoiceFile(file: InvoiceFile, keys: PublicKeys): Promise<FileCheck> {
  const number = String(file.invoice.number);
  let digest: string;
  try {
    digest = recomputedDigest(file);
  } catch (error) {
    throw new Fault(faults.INVOICE_FILE_INVALID, { reason: withOriginal('发票内容无法重新计算摘要', (error as Error).message) });
  }
  if (digest !== file.digest) throw new Fault(faults.INVOICE_SIGNATURE_INVALID, { number, reason: bilingual('内容与其摘要不符（已被篡改）', 'the content does not match its digest (altered)') });
  const key = await keys.get(file.signature.keyId);
  if (!key) throw new Fault(faults.SIGNING_KEY_UNKNOWN, { key: file.signature.keyId });
  if (!verifyDigest(key, digest, file.signature.value)) throw new Fault(faults.INVOICE_SIGNATURE_INVALID, { number, reason: bilingual('签名不是本平台的签名（伪造）', 'the signature is not the platform\'s (forged)') });
  return { number, keyId: file.signature.keyId, digest, totalWithTax: contentOf(file).totalWithTax };
}
