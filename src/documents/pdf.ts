// renderInvoicePdf: the printable PDF of one invoice (R20). A4 landscape, Noto Sans SC embedded
// as a subset, the QR code that leads to public verification, and the signed invoice file
// (see invoice-file.ts) carried in the document information, so `fapiao verify invoice.pdf`
// works offline. Deterministic: the same invoice gives the same bytes (dates and file ID come
// from the invoice, never from the clock).
import { checkCode, type InvoiceSignature } from '../domain/signature.js';
import type { InvoiceContent } from '../domain/invoice.js';
import { fontPath, invoiceFont } from './font.js';
import { drawInvoice, PAGE } from './layout.js';
import { encodeInvoiceFile, INFO_KEY } from './invoice-file.js';
import { verifyUrl } from './verify-url.js';

export interface PdfInvoice extends InvoiceContent {
  digest: string;
  signature?: InvoiceSignature | null;
}

export interface PdfOptions {
  /** Base URL of the public verification service, e.g. "https://fapiao.example.com". */
  publicUrl?: string;
  /**
   * 'naive': pdfkit reads and subsets the font files itself for this one document (~15/s). The
   * baseline of `npm run bench:docs` and the reference the fast subsets are checked against.
   */
  fonts?: 'shared' | 'naive';
}

export const DEFAULT_PUBLIC_URL = 'http://127.0.0.1:8080';

export async function renderInvoicePdf(invoice: PdfInvoice, options: PdfOptions = {}): Promise<Buffer> {
  // Loaded at the first render, not at start-up: every server process starts a fifth of a second sooner.
  const { default: PDFDocument } = await import('pdfkit');
  const issued = new Date(invoice.issuedAt);
  const doc = new PDFDocument({
    size: [PAGE.width, PAGE.height],
    margin: 0,
    autoFirstPage: true,
    compress: true,
    // No default font: pdfkit would parse Helvetica's metrics for every document, to no use.
    font: null as never,
    info: {
      Title: `${invoice.kind === 'special' ? '电子发票（增值税专用发票）' : '电子发票（普通发票）'} ${invoice.number}`,
      Author: invoice.seller.name,
      Subject: `发票号码 ${invoice.number}`,
      Creator: 'Fapiao',
      Producer: 'Fapiao',
      CreationDate: issued,
      ModDate: issued,
      // The signed invoice file, so the PDF alone can be verified offline. Base64: ASCII only.
      ...(invoice.signature && { [INFO_KEY]: encodeInvoiceFile(invoice, invoice.signature) }),
    } as PDFKit.DocumentInfo,
  });
  const naive = options.fonts === 'naive';
  doc.registerFont('regular', naive ? fontPath('regular') : (invoiceFont('regular') as never));
  doc.registerFont('bold', naive ? fontPath('bold') : (invoiceFont('bold') as never));
  drawInvoice(doc, {
    invoice,
    verifyUrl: verifyUrl(options.publicUrl ?? DEFAULT_PUBLIC_URL, invoice),
    checkCode: checkCode(invoice.digest),
  });
  return collect(doc);
}

function collect(doc: PDFKit.PDFDocument): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    doc.on('data', (chunk: Buffer) => chunks.push(chunk));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
    doc.end();
  });
}
