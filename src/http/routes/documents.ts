// Documents and public verification: the PDF of an invoice, the platform's public keys, 查验 by
// JSON (POST /api/v1/verify), by a server-rendered page (/verify) and by the QR code's URL (/v/…).
// Everything but the PDF is public; verification is limited per IP and per invoice per day.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { getInvoice } from '../../app/query-invoices.js';
import { createVerifier, verifyInvoice, type VerifyAnswer, type VerifyRequest } from '../../app/verify-invoice.js';
import { Fault, faults } from '../../domain/faults.js';
import { formatYuan, parseYuan } from '../../domain/money.js';
import { typedCheckCode } from '../../domain/signature.js';
import { PdfCache } from '../../documents/pdf-cache.js';
import { parseVerifyToken } from '../../documents/verify-url.js';
import type { HttpContext } from '../context.js';
import { ErrorView } from '../schemas.js';
import { schemaMessage } from '../zod-reasons.js';
import { verifyPage, verifyStylesheet, type PageQuery } from './verify-page.js';

export interface DocumentOptions {
  /** Base URL printed in QR codes, e.g. "https://fapiao.example.com". */
  publicUrl: string;
  /** Directory for rendered PDFs (by digest); none keeps nothing. */
  pdfCacheDir?: string;
  /** Verification requests per minute from one IP address. */
  verifyPerIpPerMinute: number;
}

export const defaultDocumentOptions: DocumentOptions = { publicUrl: 'http://127.0.0.1:8080', verifyPerIpPerMinute: 120 };

const VerifyBody = z.strictObject({
  number: z.string().regex(/^\d{20}$/, schemaMessage('发票号码为 20 位数字', 'an invoice number has 20 digits')).describe('发票号码 (20 digits)'),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, schemaMessage('开票日期格式如 2026-11-22', 'a date like 2026-11-22')).describe('开票日期, YYYY-MM-DD'),
  total_with_tax: z.string().max(20).describe('价税合计 in yuan as printed, e.g. "1130.00"'),
  check_code: z.string().max(40).transform(typedCheckCode).pipe(z.string().regex(/^\d{20}$/, '20 digits as printed'))
    .describe('校验码, the 20 digits printed under the date; the spaces between its groups of five may be typed or left out'),
});

export const VerifyView = z.object({
  result: z.enum(['genuine', 'voided', 'reversed', 'unknown']),
  result_zh: z.string(),
  invoice: z
    .object({
      number: z.string(), kind: z.enum(['normal', 'special']), issue_date: z.string(),
      seller: z.object({ name: z.string(), tax_id: z.string() }),
      buyer: z.object({ name: z.string(), tax_id_masked: z.string() }),
      total_amount: z.string(), total_tax: z.string(), total_with_tax: z.string(),
      status_changed_at: z.string().nullable(), signed: z.boolean(), verifications_today: z.number().int(),
    })
    .optional(),
});

const KeysView = z.object({
  keys: z.array(z.object({ id: z.string(), algorithm: z.literal('Ed25519'), public_key_pem: z.string(), created_at: z.string(), retired_at: z.string().nullable() })),
});

export const resultZh = { genuine: '真票（发票有效）', voided: '已作废', reversed: '已红冲', unknown: '查无此票' } as const;

export function verifyView(answer: VerifyAnswer) {
  const i = answer.invoice;
  return {
    result: answer.result,
    result_zh: resultZh[answer.result],
    ...(i && {
      invoice: {
        number: i.number, kind: i.kind, issue_date: i.issueDate,
        seller: { name: i.sellerName, tax_id: i.sellerTaxId },
        buyer: { name: i.buyerName, tax_id_masked: i.buyerTaxIdMasked },
        total_amount: formatYuan(i.totalAmount), total_tax: formatYuan(i.totalTax), total_with_tax: formatYuan(i.totalWithTax),
        status_changed_at: i.statusChangedAt, signed: i.signed, verifications_today: i.verificationsToday,
      },
    }),
  };
}

export function documentRoutes(app: FastifyInstance, { ports }: HttpContext, options: DocumentOptions): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const verifier = createVerifier(ports); // public keys and the day's counters, kept between requests
  app.addHook('onClose', async () => verifier.counter.flush());
  const pdfs = new PdfCache({ publicUrl: options.publicUrl, ...(options.pdfCacheDir && { dir: options.pdfCacheDir }) });
  // Per IP, whatever credentials come along: verification is anonymous.
  const perIp = { max: options.verifyPerIpPerMinute, timeWindow: 60_000, keyGenerator: (request: FastifyRequest) => `verify:${request.ip}` };
  const open = { public: true, rateLimit: perIp };
  const errors = { 400: ErrorView, 404: ErrorView, 415: ErrorView, 422: ErrorView, 429: ErrorView, 503: ErrorView };

  api.get('/api/v1/invoices/:number/pdf', {
    schema: {
      summary: 'The invoice as a printable PDF (版式文件)', tags: ['invoices'],
      description: 'A4, the official 电子发票 layout, Chinese font embedded as a subset, QR code for verification. The same invoice always gives the same bytes.',
      params: z.strictObject({ number: z.string().max(40) }),
      response: { 200: z.any().describe('application/pdf'), 401: ErrorView, 403: ErrorView, ...errors, 500: ErrorView },
    },
  }, async (request, reply) => {
    const invoice = await getInvoice(ports, request.caller, request.params.number);
    const pdf = await pdfs.pdfFor(invoice);
    return reply
      .type('application/pdf')
      .header('content-disposition', `inline; filename="fapiao-${invoice.number}.pdf"`)
      .header('etag', `"${invoice.digest.slice(0, 32)}"`)
      .send(pdf);
  });

  api.get('/api/v1/keys', {
    config: { public: true },
    schema: { summary: "The platform's public signing keys, current and retired", tags: ['verification'], response: { 200: KeysView } },
  }, async () => ({
    keys: (await ports.store.read.signingKeys.list()).map((k) => ({ id: k.id, algorithm: k.algorithm, public_key_pem: k.publicKeyPem, created_at: k.createdAt, retired_at: k.retiredAt })),
  }));

  api.post('/api/v1/verify', {
    config: open,
    schema: {
      summary: 'Verify an invoice (查验)', tags: ['verification'],
      description: `Answers genuine, voided, reversed or unknown. At most 5 verifications per invoice per day (3020), and ${options.verifyPerIpPerMinute} per minute from one IP (7002).`,
      body: VerifyBody,
      response: { 200: VerifyView, ...errors },
    },
  }, async (request) => {
    const b = request.body;
    return verifyView(await verifyInvoice(ports, verifier, { number: b.number, date: b.date, totalWithTax: parseYuan(b.total_with_tax, 'total_with_tax'), checkCode: b.check_code }));
  });

  // The QR code's URL: an HTML answer for a phone's browser, JSON for a program that asks for it.
  api.get('/v/:token', {
    config: open,
    schema: { summary: 'Verify from the QR code', tags: ['verification'], params: z.strictObject({ token: z.string().max(80) }), response: { 200: VerifyView, ...errors } },
  }, async (request, reply) => {
    const token = parseVerifyToken(request.params.token);
    if (!token) throw new Fault(faults.VERIFY_LINK_INVALID);
    await answer(request, reply, token); // sends JSON or HTML itself
  });

  api.get('/verify', {
    config: open,
    schema: {
      summary: 'The public verification page (发票查验)', tags: ['verification'],
      querystring: z.object({ number: z.string().max(40).optional(), date: z.string().max(20).optional(), total_with_tax: z.string().max(20).optional(), check_code: z.string().max(40).optional() }),
    },
  }, async (request, reply) => {
    const q = request.query as PageQuery;
    reply.type('text/html; charset=utf-8');
    if (!q.number && !q.date && !q.total_with_tax && !q.check_code) return verifyPage(q);
    const parsed = parsePageQuery(q);
    if ('problem' in parsed) return reply.code(422).send(verifyPage(q, { problem: parsed.problem }));
    try {
      return verifyPage(q, { answer: await verifyInvoice(ports, verifier, parsed) });
    } catch (error) {
      if (error instanceof Fault) return reply.code(error.spec.http).send(verifyPage(q, { fault: error }));
      throw error;
    }
  });

  app.get('/verify.css', { config: { public: true }, schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(verifyStylesheet));

  async function answer(request: FastifyRequest, reply: FastifyReply, query: VerifyRequest): Promise<FastifyReply> {
    const wantsJson = (request.headers.accept ?? '').includes('application/json');
    if (wantsJson) return reply.send(verifyView(await verifyInvoice(ports, verifier, query)));
    reply.type('text/html; charset=utf-8');
    const form: PageQuery = { number: query.number, date: query.date, total_with_tax: formatYuan(query.totalWithTax), check_code: query.checkCode };
    try {
      return reply.send(verifyPage(form, { answer: await verifyInvoice(ports, verifier, query) }));
    } catch (error) {
      if (error instanceof Fault) return reply.code(error.spec.http).send(verifyPage(form, { fault: error }));
      throw error;
    }
  }
}

function parsePageQuery(q: PageQuery): VerifyRequest | { problem: string } {
  const number = (q.number ?? '').trim();
  const date = (q.date ?? '').trim();
  const code = typedCheckCode(q.check_code ?? '');
  if (!/^\d{20}$/.test(number)) return { problem: '发票号码应为20位数字 / The invoice number has 20 digits' };
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return { problem: '开票日期格式应为 2026-11-22 / The date is written like 2026-11-22' };
  if (!/^\d{20}$/.test(code)) return { problem: '校验码应为20位数字 / The check code has 20 digits' };
  try {
    return { number, date, checkCode: code, totalWithTax: parseYuan((q.total_with_tax ?? '').trim().replace(/^[¥￥]/, ''), 'total_with_tax') };
  } catch {
    return { problem: '价税合计应为金额，如 1130.00 / The total is an amount such as 1130.00' };
  }
}
