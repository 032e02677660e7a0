// The signed invoice file (fapiao-invoice/1): the invoice's content, its digest and the platform's
// Ed25519 signature, as JSON. It is what `fapiao verify <file>` checks offline, and every PDF
// carries it base64-encoded in its document information under /FapiaoInvoice, so the PDF itself
// is such a file too.
import { canonicalContent, sha256, type InvoiceContent, type InvoiceLine } from '../domain/invoice.js';
import type { InvoiceSignature } from '../domain/signature.js';

export const FILE_FORMAT = 'fapiao-invoice/1';
export const INFO_KEY = 'FapiaoInvoice';

type Money<T> = { [K in keyof T]: T[K] extends bigint ? string : T[K] };

export interface InvoiceFile {
  format: typeof FILE_FORMAT;
  invoice: Omit<Money<InvoiceContent>, 'lines'> & { lines: Array<Money<InvoiceLine>> };
  digest: string;
  signature: InvoiceSignature & { algorithm: 'Ed25519' };
}

export function invoiceFile(content: InvoiceContent & { digest: string }, signature: InvoiceSignature): InvoiceFile {
  const c = content;
  return {
    format: FILE_FORMAT,
    invoice: {
      number: c.number, kind: c.kind, issuedAt: c.issuedAt, pricesIncludeTax: c.pricesIncludeTax, remarks: c.remarks, issuer: c.issuer,
      seller: { ...c.seller }, buyer: { ...c.buyer },
      lines: c.lines.map((l) => ({ ...l, amount: l.amount.toString(), tax: l.tax.toString() })),
      totalAmount: c.totalAmount.toString(), totalTax: c.totalTax.toString(), totalWithTax: c.totalWithTax.toString(),
    },
    digest: c.digest,
    signature: { algorithm: 'Ed25519', keyId: signature.keyId, value: signature.value },
  };
}

export function encodeInvoiceFile(content: InvoiceContent & { digest: string }, signature: InvoiceSignature): string {
  return Buffer.from(JSON.stringify(invoiceFile(content, signature)), 'utf8').toString('base64');
}

/** The content back from a file, amounts as bigint. Throws on a shape that is not the format. */
export function contentOf(file: InvoiceFile): InvoiceContent {
  const i = file.invoice;
  const fen = (text: string) => {
    if (!/^-?\d{1,19}$/.test(text)) throw new Error(`"${text}" is not an amount in fen`);
    return BigInt(text);
  };
  return {
    number: i.number, kind: i.kind, issuedAt: i.issuedAt, pricesIncludeTax: i.pricesIncludeTax, remarks: i.remarks, issuer: i.issuer,
    seller: i.seller, buyer: i.buyer,
    lines: i.lines.map((l) => ({ ...l, amount: fen(l.amount), tax: fen(l.tax) })),
    totalAmount: fen(i.totalAmount), totalTax: fen(i.totalTax), totalWithTax: fen(i.totalWithTax),
  };
}

/** The digest the content of a file really has (not the one the file claims). */
export function recomputedDigest(file: InvoiceFile): string {
  return sha256(canonicalContent(contentOf(file)));
}

/**
 * Reads a signed invoice file from JSON text or from a PDF made by renderInvoicePdf. The
 * document information is written uncompressed, so the base64 text is found as is.
 */
export function readInvoiceFile(bytes: Buffer): InvoiceFile {
  const head = bytes.subarray(0, 5).toString('latin1');
  let json: string;
  if (head === '%PDF-') {
    // pdfkit writes each information entry as its own object: /FapiaoInvoice 18 0 R … 18 0 obj (…)
    const text = bytes.toString('latin1');
    const ref = new RegExp(`/${INFO_KEY} (\\d+) 0 R`).exec(text);
    const value = ref && new RegExp(`(?:^|\\n)${ref[1]} 0 obj\\s*\\(([A-Za-z0-9+/=]+)\\)`).exec(text);
    if (!value) throw new Error('this PDF carries no signed invoice (/FapiaoInvoice)');
    json = Buffer.from(value[1]!, 'base64').toString('utf8');
  } else {
    json = bytes.toString('utf8');
  }
  const file = JSON.parse(json) as InvoiceFile;
  if (file?.format !== FILE_FORMAT || typeof file.digest !== 'string' || typeof file.signature?.value !== 'string' || !file.invoice) {
    throw new Error(`not a ${FILE_FORMAT} file`);
  }
  return file;
}
