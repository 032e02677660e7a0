// The URL in the invoice's QR code: everything public verification asks for (number, date,
// 价税合计 in fen, 校验码) in one path segment, so scanning it answers without typing.
//   <publicUrl>/v/<number>-<yyyymmdd>-<total fen>-<check code>
import type { InvoiceContent } from '../domain/invoice.js';
import { checkCode } from '../domain/signature.js';

export interface VerifyToken {
  number: string;
  date: string; // yyyy-mm-dd
  totalWithTax: bigint;
  checkCode: string;
}

export function verifyUrl(publicUrl: string, invoice: InvoiceContent & { digest: string }): string {
  const date = invoice.issuedAt.slice(0, 10).replaceAll('-', '');
  return `${publicUrl.replace(/\/+$/, '')}/v/${invoice.number}-${date}-${invoice.totalWithTax}-${checkCode(invoice.digest)}`;
}

export function parseVerifyToken(token: string): VerifyToken | undefined {
  const m = /^(\d{20})-(\d{4})(\d{2})(\d{2})-(\d{1,16})-(\d{20})$/.exec(token);
  if (!m) return undefined;
  return { number: m[1]!, date: `${m[2]}-${m[3]}-${m[4]}`, totalWithTax: BigInt(m[5]!), checkCode: m[6]! };
}
