// Email to the buyer (R11) through a real SMTP server (smtp-server on a real port). The mail that
// arrives must carry the invoice as a PDF that poppler reads; an SMTP server that refuses at first
// must get the mail on a later attempt, with every attempt in the delivery log.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboxRunner, type OutboxRunner } from '../../src/app/outbox-runner.js';
import { emailHandler, emailInvoice, fanOut, setDeliverySettings } from '../../src/app/deliveries.js';
import { smtpMailer, type Mailer } from '../../src/documents/email.js';
import { renderInvoicePdf } from '../../src/documents/pdf.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { body, startApi, type Api, type ErrorBody } from '../support/http.js';
import { until } from '../support/until.js';

interface Mail {
  from: string;
  to: string[];
  raw: string;
}

/** Refuses the first `refuseFirst` deliveries to `busy` with 451 (a mailbox that is busy). */
async function startSmtp(busy: string, refuseFirst: number) {
  const mails: Mail[] = [];
  let refusals = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(address, _session, callback) {
      if (address.address === busy && refusals < refuseFirst) {
        refusals += 1;
        const error = Object.assign(new Error('mailbox busy, try again later'), { responseCode: 451 });
        return callback(error);
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return { url: `smtp://127.0.0.1:${port}`, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The PDF attachment of a MIME message, decoded. */
function pdfAttachment(raw: string): { filename: string; bytes: Buffer } {
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(raw)?.[1];
  if (!boundary) throw new Error('not a multipart message');
  for (const part of raw.split(`--${boundary}`)) {
    const split = part.indexOf('\r\n\r\n');
    const headers = part.slice(0, split);
    if (!/content-type:\s*application\/pdf/i.test(headers)) continue;
    expect(headers).toMatch(/content-transfer-encoding:\s*base64/i);
    const filename = /filename="?([^";\r\n]+)"?/i.exec(headers)?.[1] ?? '';
    return { filename, bytes: Buffer.from(part.slice(split + 4).replace(/\s+/g, ''), 'base64') };
  }
  throw new Error('no PDF attachment');
}

function header(raw: string, name: string): string | undefined {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
  return new RegExp(`^${name}:\\s*(.+)$`, 'im').exec(head)?.[1]?.trim();
}

for (const kind of storesUnderTest) {
  describe(`email on ${kind.name}`, () => {
    let opened: OpenedStore;
    let api: Api;
    let smtp: Awaited<ReturnType<typeof startSmtp>>;
    let mailer: Mailer;
    let runner: OutboxRunner & { start(): void };
    let dir: string;
    const send = (key: string, method: 'POST' | 'PUT', url: string, payload: unknown) =>
      api.inject({ method, url, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, payload: JSON.stringify(payload) });

    beforeAll(async () => {
      opened = await kind.open();
      api = await startApi(opened.store);
      smtp = await startSmtp('ap@example.cn', 2);
      mailer = smtpMailer({ url: smtp.url, from: 'Fapiao <fapiao@example.cn>' });
      const deps = { renderPdf: (invoice: Parameters<typeof renderInvoicePdf>[0]) => renderInvoicePdf(invoice), mailer, mailFrom: 'Fapiao <fapiao@example.cn>', retry: { baseDelayMs: 40, maxDelayMs: 200, giveUpAfterMs: 3_600_000 } };
      runner = createOutboxRunner(api.ports, emailHandler(api.ports, deps), { idleMs: 20, backoffMs: 20, leaseMs: 20_000 });
      dir = mkdtempSync(join(tmpdir(), 'fapiao-mail-'));
    });
    afterAll(async () => {
      await runner.stop();
      mailer.close();
      await smtp.close();
      await api.close();
      await opened.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('emails each issued invoice to the buyer with the PDF attached, retrying an SMTP server that refuses at first', async () => {
      const settings = await send(api.a.keys.owner, 'PUT', '/api/v1/delivery-settings', { email_buyer: true });
      expect(body(settings)).toEqual({ email_buyer: true });
      const issued = body(await api.issue(api.a.keys.clerk, api.sampleInvoice({ buyer: { email: 'ap@example.cn' } })));
      await api.issue(api.a.keys.clerk, api.sampleInvoice({ buyer: { email: '' } })); // no address: no mail
      // A clerk emails the next one by hand before the fan-out comes by: it is sent once, not twice.
      const early = body(await api.issue(api.a.keys.clerk, api.sampleInvoice({ buyer: { email: 'early@example.cn' } })));
      const byHand = body(await send(api.a.keys.clerk, 'POST', `/api/v1/invoices/${early.number}/email`, {}));
      expect(await fanOut(api.ports)).toBe(3);
      expect(body(await api.get(api.a.keys.owner, '/api/v1/deliveries', { subject: early.number })).items.map((d: any) => d.id)).toEqual([byHand.id]);
      // Time moves on: the clock of the test API stands still unless told.
      const ticking = setInterval(() => api.clock.advance(100), 20);
      runner.start();
      const delivery = await until('the mails', async () => {
        const list = body(await api.get(api.a.keys.owner, '/api/v1/deliveries', { channel: 'email' }));
        return list.items.length === 2 && list.items.every((d: any) => d.state === 'delivered') ? list.items.find((d: any) => d.subject === issued.number) : undefined;
      }).finally(() => clearInterval(ticking));

      expect(smtp.mails).toHaveLength(2);
      expect(smtp.mails.filter((m) => m.to.includes('early@example.cn'))).toHaveLength(1);
      const mail = smtp.mails.find((m) => m.to.includes('ap@example.cn'))!;
      expect(mail.to).toEqual(['ap@example.cn']);
      expect(mail.from).toBe('fapiao@example.cn');
      expect(header(mail.raw, 'Fapiao-Delivery-Id')).toBe(delivery.id);
      expect(header(mail.raw, 'Message-ID')).toBe(`<${delivery.id}@example.cn>`);

      const { filename, bytes } = pdfAttachment(mail.raw);
      expect(filename).toBe(`${issued.number}.pdf`);
      expect(bytes.subarray(0, 5).toString()).toBe('%PDF-');
      const file = join(dir, filename);
      writeFileSync(file, bytes);
      expect(execFileSync('pdfinfo', [file], { encoding: 'utf8' })).toMatch(/Pages:\s+1/);
      const text = execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
      expect(text).toContain(issued.number);
      expect(text).toContain('1564.24');

      const detail = body(await api.get(api.a.keys.owner, `/api/v1/deliveries/${delivery.id}`));
      expect(detail.attempts_log.map((a: any) => [a.outcome, a.status_code])).toEqual([['failed', 451], ['failed', 451], ['delivered', 250]]);
      expect(detail.attempts_log[0].error).toMatch(/451|busy/);
    });

    it('sends on request to another address, and refuses what cannot be sent', async () => {
      const issued = body(await api.issue(api.a.keys.clerk, api.sampleInvoice({ buyer: { email: '' } })));
      const noAddress = await send(api.a.keys.clerk, 'POST', `/api/v1/invoices/${issued.number}/email`, {});
      expect(noAddress.statusCode).toBe(422);
      expect(body<ErrorBody>(noAddress).error.code).toBe(3030);
      const bad = await send(api.a.keys.clerk, 'POST', `/api/v1/invoices/${issued.number}/email`, { to: 'not-an-address' });
      expect(body<ErrorBody>(bad).error.code).toBe(1031);
      expect((await send(api.b.keys.clerk, 'POST', `/api/v1/invoices/${issued.number}/email`, { to: 'cfo@example.cn' })).statusCode).toBe(404);
      expect((await send(api.a.keys.auditor, 'POST', `/api/v1/invoices/${issued.number}/email`, { to: 'cfo@example.cn' })).statusCode).toBe(403);

      // A server without SMTP settings says so at once instead of queueing mail it cannot send.
      const caller = { merchantId: api.a.id, role: 'owner' as const, actor: 'test' };
      await expect(emailInvoice({ ...api.ports, emailEnabled: false }, caller, issued.number, 'cfo@example.cn')).rejects.toMatchObject({ code: 6034 });
      await expect(setDeliverySettings({ ...api.ports, emailEnabled: false }, caller, { emailBuyer: true })).rejects.toMatchObject({ code: 6034 });

      const requested = await send(api.a.keys.clerk, 'POST', `/api/v1/invoices/${issued.number}/email`, { to: 'cfo@example.cn' });
      expect(requested.statusCode).toBe(202);
      const ticking = setInterval(() => api.clock.advance(100), 20);
      await until('the requested mail', async () => (smtp.mails.some((m) => m.to.includes('cfo@example.cn')) ? true : undefined)).finally(() => clearInterval(ticking));
      const mail = smtp.mails.find((m) => m.to.includes('cfo@example.cn'))!;
      expect(pdfAttachment(mail.raw).filename).toBe(`${issued.number}.pdf`);
      // Asking again re-sends the same delivery rather than making a second one.
      const again = body(await send(api.a.keys.clerk, 'POST', `/api/v1/invoices/${issued.number}/email`, { to: 'cfo@example.cn' }));
      expect(again.id).toBe(body(requested).id);
    });
  });
}
