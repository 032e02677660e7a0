// Email of an invoice to the buyer (R11) through SMTP (nodemailer). The message carries the PDF
// and a stable Message-ID made from the delivery id, so a retry after an unclear failure is
// recognisable as the same message by mail systems and by people.
import nodemailer from 'nodemailer';
import type { Invoice } from '../domain/invoice.js';
import { formatYuan } from '../domain/money.js';

export interface MailSettings {
  /** smtp://host:port, smtps://user:pass@host:465 … (FAPIAO_SMTP_URL). */
  url: string;
  /** The From address (FAPIAO_MAIL_FROM). */
  from: string;
}

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  messageId: string;
  headers: Record<string, string>;
  attachments: Array<{ filename: string; content: Buffer; contentType: string }>;
}

export interface SendResult {
  ok: boolean;
  /** The SMTP reply code when the server answered. */
  statusCode: number | null;
  durationMs: number;
  error: string | null;
}

export interface Mailer {
  send(mail: OutgoingMail): Promise<SendResult>;
  close(): void;
}

const TIMEOUT_MS = 15_000;

export function smtpMailer(settings: MailSettings): Mailer {
  const transport = nodemailer.createTransport(settings.url, {
    connectionTimeout: TIMEOUT_MS,
    greetingTimeout: TIMEOUT_MS,
    socketTimeout: TIMEOUT_MS * 2,
  } as never);
  return {
    async send(mail) {
      const started = performance.now();
      const duration = () => Math.round(performance.now() - started);
      try {
        const info = await transport.sendMail({ from: settings.from, ...mail });
        const code = Number(/^(\d{3})/.exec(String(info.response ?? ''))?.[1] ?? 250);
        if (info.rejected.length > 0) return { ok: false, statusCode: code, durationMs: duration(), error: `recipient refused: ${info.rejected.join(', ')}` };
        return { ok: true, statusCode: code, durationMs: duration(), error: null };
      } catch (error) {
        const e = error as { responseCode?: number; code?: string; message?: string };
        // nodemailer's messages name the server and the reply, never the password of the URL.
        return { ok: false, statusCode: e.responseCode ?? null, durationMs: duration(), error: `${e.code ?? 'SMTP'}: ${(e.message ?? '').slice(0, 200)}` };
      }
    },
    close: () => transport.close(),
  };
}

export function invoiceMail(invoice: Invoice, pdf: Buffer, to: string, deliveryId: string, fromDomain: string): OutgoingMail {
  const total = formatYuan(invoice.totalWithTax);
  return {
    to,
    subject: `电子发票 ${invoice.number}（${invoice.seller.name}）/ E-invoice ${invoice.number}`,
    text: [
      `${invoice.buyer.name}：`,
      '',
      `${invoice.seller.name} 为您开具了电子发票，PDF 文件见附件。`,
      `发票号码：${invoice.number}`,
      `开票日期：${invoice.issuedAt.slice(0, 10)}`,
      `价税合计：¥${total}`,
      '',
      `${invoice.seller.name} has issued you an electronic invoice; the PDF is attached.`,
      `Number ${invoice.number}, issued ${invoice.issuedAt.slice(0, 10)}, total CNY ${total}.`,
      '',
      '本邮件由 Fapiao 电子发票平台自动发送，请勿直接回复。',
    ].join('\n'),
    messageId: `<${deliveryId}@${fromDomain}>`,
    headers: { 'Fapiao-Delivery-Id': deliveryId },
    attachments: [{ filename: `${invoice.number}.pdf`, content: pdf, contentType: 'application/pdf' }],
  };
}

/** The domain part of the From address, for Message-IDs. */
export function mailDomain(from: string): string {
  return /@([^>\s]+)>?\s*$/.exec(from)?.[1] ?? 'fapiao.local';
}
