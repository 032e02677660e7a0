// The print queue (R21) against real printers: CUPS queues printing through the cups-pdf virtual
// printer, and hot-folder directories. A stopped CUPS queue must not lose the print: the job
// retries with backoff, moves to the backup printer, and comes out exactly once. A process that died
// between handing a job to CUPS and recording it must not cause a second print. When nothing can
// print, the job says so and the PDF stays downloadable for printing by hand.
// CUPS is needed: if cupsd cannot be started this suite FAILS with the reason (it never skips).
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboxRunner, type OutboxRunner } from '../../src/app/outbox-runner.js';
import { fanOut } from '../../src/app/deliveries.js';
import { addPrinter } from '../../src/app/printing.js';
import { printJobHandler } from '../../src/documents/print-queue.js';
import { renderInvoicePdf } from '../../src/documents/pdf.js';
import { startSending, submitted } from '../../src/domain/print-job.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { body, startApi, type Api, type ErrorBody, type MovableClock } from '../support/http.js';
import { until } from '../support/until.js';

const PPD = '/usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd';
const POLICY = { baseDelayMs: 100, maxDelayMs: 300, failoverAfter: 3, maxAttempts: 6, stuckAfterMs: 5_000, pollMs: 50 };

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, LANG: 'C' } });
  if (result.error) throw new Error(`${command} cannot run (${result.error.message}); install cups cups-client cups-pdf cups-ipp-utils`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr || result.stdout}`);
  return result.stdout;
}

/** Starts cupsd when it is not running; fails loudly when it cannot. */
async function ensureCups(): Promise<void> {
  if (!existsSync('/usr/sbin/cupsd')) throw new Error('CUPS is not installed: apt-get install cups cups-client cups-pdf cups-ipp-utils');
  if (!existsSync(PPD)) throw new Error(`cups-pdf is not installed (no ${PPD}): apt-get install cups-pdf`);
  const running = () => spawnSync('lpstat', ['-r'], { encoding: 'utf8' }).stdout.includes('scheduler is running');
  if (!running()) spawnSync('/usr/sbin/cupsd', [], { stdio: 'ignore' });
  for (let i = 0; i < 50 && !running(); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  if (!running()) throw new Error('the CUPS scheduler (cupsd) could not be started; the print tests need a real CUPS');
}

/** Where cups-pdf writes what root prints (Out in /etc/cups/cups-pdf.conf). */
function cupsPdfDir(): string {
  const conf = existsSync('/etc/cups/cups-pdf.conf') ? readFileSync('/etc/cups/cups-pdf.conf', 'utf8') : '';
  const out = /^Out\s+(.+)$/m.exec(conf)?.[1]?.trim() ?? '${HOME}/PDF';
  return out.replace('${HOME}', homedir());
}

const printedFiles = (dir: string, jobId: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.includes(jobId)) : []);

function runningClock(): MovableClock {
  let offset = 0;
  return { now: () => new Date(Date.now() + offset), set: (at) => void (offset = new Date(at).getTime() - Date.now()), advance: (ms) => void (offset += ms) };
}

for (const kind of storesUnderTest) {
  describe(`print queue on ${kind.name}`, () => {
    let opened: OpenedStore;
    let api: Api;
    let runner: OutboxRunner & { start(): void };
    let scratch: string;
    const tag = randomBytes(3).toString('hex').toUpperCase();
    const queueA = `FAPIAO_T${tag}_A`;
    const queueB = `FAPIAO_T${tag}_B`;
    const pdfDir = cupsPdfDir();
    const startedAt = Date.now();
    const send = (key: string, method: 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) =>
      api.inject({ method, url, headers: { authorization: `Bearer ${key}`, ...(payload !== undefined && { 'content-type': 'application/json' }) }, ...(payload !== undefined && { payload: JSON.stringify(payload) }) });
    const job = async (id: string) => body(await api.get(api.a.keys.clerk, `/api/v1/print-jobs/${id}`));
    const finished = (id: string) => until(`print job ${id}`, async () => {
      const j = await job(id);
      return ['printed', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
    });

    beforeAll(async () => {
      await ensureCups();
      for (const queue of [queueA, queueB]) run('lpadmin', ['-p', queue, '-v', 'cups-pdf:/', '-E', '-P', PPD]);
      opened = await kind.open();
      api = await startApi(opened.store, { clock: runningClock() });
      scratch = mkdtempSync(join(tmpdir(), 'fapiao-print-'));
      runner = createOutboxRunner(api.ports, printJobHandler(api.ports, { renderPdf: (invoice) => renderInvoicePdf(invoice), policy: POLICY }), { idleMs: 20, backoffMs: 50, leaseMs: 10_000 });
    });
    afterAll(async () => {
      await runner?.stop();
      for (const queue of [queueA, queueB]) spawnSync('lpadmin', ['-x', queue]);
      // cups-pdf's output of this run (file names carry the job ids).
      for (const name of existsSync(pdfDir) ? readdirSync(pdfDir) : []) {
        if (name.startsWith('fapiao-pj_') && statSync(join(pdfDir, name)).mtimeMs >= startedAt - 1_000) rmSync(join(pdfDir, name), { force: true });
      }
      await api?.close();
      await opened?.cleanup();
      rmSync(scratch, { recursive: true, force: true });
    });

    it('moves the jobs of a stopped CUPS queue to the backup after retrying, and prints each exactly once', async () => {
      const a = body(await send(api.a.keys.owner, 'POST', '/api/v1/printers', { name: '前台', backend: 'cups', target: queueA, default: true }));
      const b = body(await send(api.a.keys.owner, 'POST', '/api/v1/printers', { name: '财务室', backend: 'cups', target: queueB }));
      expect(body(await send(api.a.keys.owner, 'PATCH', `/api/v1/printers/${a.id}`, { backup_printer_id: b.id })).backup_printer_id).toBe(b.id);
      run('cupsdisable', [queueA]); // the front-desk printer is out of paper

      const issued = [];
      for (let i = 0; i < 2; i++) issued.push(body(await api.issue(api.a.keys.clerk, api.sampleInvoice())));
      expect(await fanOut(api.ports)).toBe(2); // auto-print on the default printer
      const started = Date.now();
      runner.start();
      const jobs = await Promise.all(issued.map(async (invoice) => {
        const listed = body(await api.get(api.a.keys.clerk, '/api/v1/print-jobs', { invoice_number: invoice.number }));
        expect(listed.items).toHaveLength(1);
        return finished(listed.items[0].id);
      }));
      // Three attempts on the stopped queue, 100 ms then 200 ms apart, then the backup.
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      for (const j of jobs) {
        expect(j).toMatchObject({ state: 'printed', printer_id: b.id, original_printer_id: a.id, attempts: 1, total_attempts: 4, last_error: null });
        expect(j.moved_at).not.toBeNull();
        expect(j.external_id).toMatch(new RegExp(`^${queueB}-\\d+$`));
        expect(j.pdf).toBe(`/api/v1/invoices/${j.invoice_number}/pdf`);
        const files = printedFiles(pdfDir, j.id);
        expect(files, `cups-pdf output for ${j.id}`).toHaveLength(1);
        expect(execFileSync('pdfinfo', [join(pdfDir, files[0]!)], { encoding: 'utf8' })).toMatch(/Pages:\s+1/);
      }
      // Nothing was ever handed to the stopped queue; the backup finished exactly these two jobs.
      expect(run('lpstat', ['-W', 'all', '-o', queueA]).trim()).toBe('');
      expect(run('lpstat', ['-W', 'completed', '-o', queueB]).trim().split('\n')).toHaveLength(2);
      const printers = body(await api.get(api.a.keys.auditor, '/api/v1/printers')).items;
      expect(printers.find((p: any) => p.id === a.id)).toMatchObject({ health: 'failing' });
      expect(printers.find((p: any) => p.id === a.id).health_detail).toContain('stopped');
      expect(printers.find((p: any) => p.id === b.id)).toMatchObject({ health: 'ok' });

      // The queue is back: printing there works again, and the status check says so.
      run('cupsenable', [queueA]);
      expect(body(await api.get(api.a.keys.clerk, `/api/v1/printers/${a.id}/status`)).health).toBe('ok');
      const direct = body(await send(api.a.keys.clerk, 'POST', `/api/v1/invoices/${issued[0].number}/print`, {}));
      expect(await finished(direct.id)).toMatchObject({ state: 'printed', printer_id: a.id, total_attempts: 1 });
      expect(printedFiles(pdfDir, direct.id)).toHaveLength(1);
    });

    it('after a crash between lp and recording, adopts the held CUPS job instead of printing again', async () => {
      await runner.stop();
      const printers = body(await api.get(api.a.keys.owner, '/api/v1/printers')).items;
      const b = printers.find((p: any) => p.target === queueB);
      const invoice = body(await api.issue(api.a.keys.clerk, api.sampleInvoice()));
      const created = body(await send(api.a.keys.clerk, 'POST', `/api/v1/invoices/${invoice.number}/print`, { printer_id: b.id }));
      // What the dead process did: wrote "sending", handed the PDF to CUPS held, and died.
      const stored = (await api.store.read.printJobs.get(api.a.id, created.id))!;
      expect(await api.store.write((tx) => tx.printJobs.save(startSending(stored, stored.createdAt), 'queued'))).toBe(true);
      const file = join(scratch, 'crash.pdf');
      writeFileSync(file, await renderInvoicePdf((await api.store.read.invoices.get(api.a.id, invoice.number))!));
      const heldId = /request id is (\S+)/.exec(run('lp', ['-d', queueB, '-t', `fapiao-${created.id}`, '-H', 'indefinite', file]))![1];
      const jobsBefore = run('lpstat', ['-W', 'all', '-o', queueB]).trim().split('\n').length;

      runner = createOutboxRunner(api.ports, printJobHandler(api.ports, { renderPdf: (i) => renderInvoicePdf(i), policy: POLICY }), { idleMs: 20, backoffMs: 50, leaseMs: 10_000 });
      runner.start();
      const done = await finished(created.id);
      expect(done).toMatchObject({ state: 'printed', external_id: heldId, total_attempts: 1 });
      expect(run('lpstat', ['-W', 'all', '-o', queueB]).trim().split('\n')).toHaveLength(jobsBefore); // no second lp
      expect(printedFiles(pdfDir, created.id)).toHaveLength(1);
    });

    it('cancels a job a queue holds without printing, and moves it on only once CUPS confirms the cancellation', async () => {
      const printers = body(await api.get(api.a.keys.owner, '/api/v1/printers')).items;
      const [a, b] = [printers.find((p: any) => p.target === queueA), printers.find((p: any) => p.target === queueB)];
      await runner.stop();
      const invoice = body(await api.issue(api.a.keys.clerk, api.sampleInvoice()));
      const created = body(await send(api.a.keys.clerk, 'POST', `/api/v1/invoices/${invoice.number}/print`, { printer_id: a.id }));
      // Queue A took the job and then stopped (paper jam) before printing it: it sits there.
      run('cupsdisable', [queueA]);
      const file = join(scratch, 'stuck.pdf');
      writeFileSync(file, await renderInvoicePdf((await api.store.read.invoices.get(api.a.id, invoice.number))!));
      const stuckId = /request id is (\S+)/.exec(run('lp', ['-d', queueA, '-t', `fapiao-${created.id}`, file]))![1]!;
      const stored = (await api.store.read.printJobs.get(api.a.id, created.id))!;
      const longAgo = new Date(Date.now() - POLICY.stuckAfterMs - 1_000).toISOString().replace('Z', '+00:00');
      const sending = startSending(stored, stored.createdAt);
      expect(await api.store.write((tx) => tx.printJobs.save(sending, 'queued'))).toBe(true);
      expect(await api.store.write((tx) => tx.printJobs.save(submitted(sending, stuckId, longAgo), 'sending'))).toBe(true);

      runner = createOutboxRunner(api.ports, printJobHandler(api.ports, { renderPdf: (i) => renderInvoicePdf(i), policy: POLICY }), { idleMs: 20, backoffMs: 50, leaseMs: 10_000 });
      runner.start();
      const done = await finished(created.id);
      expect(done).toMatchObject({ state: 'printed', printer_id: b.id, original_printer_id: a.id, attempts: 1, total_attempts: 4 }); // stuck + 2 refusals on A, 1 on B
      expect(run('lpstat', ['-W', 'completed', '-o', queueA])).toContain(stuckId); // finished there as cancelled, not printed
      expect(printedFiles(pdfDir, created.id)).toHaveLength(1); // printed once, on B
      run('cupsenable', [queueA]);
    });

    it('fails over between hot folders, and when nothing can print says so and keeps the PDF downloadable', async () => {
      const missing = join(scratch, 'unplugged');
      const inbox = join(scratch, 'inbox');
      mkdirSync(inbox);
      const d1 = body(await send(api.a.keys.owner, 'POST', '/api/v1/printers', { name: '热文件夹1', backend: 'directory', target: missing }));
      const d2 = body(await send(api.a.keys.owner, 'POST', '/api/v1/printers', { name: '热文件夹2', backend: 'directory', target: inbox }));
      await send(api.a.keys.owner, 'PATCH', `/api/v1/printers/${d1.id}`, { backup_printer_id: d2.id });
      const invoice = body(await api.issue(api.a.keys.clerk, api.sampleInvoice()));
      const moved = await finished(body(await send(api.a.keys.clerk, 'POST', `/api/v1/invoices/${invoice.number}/print`, { printer_id: d1.id })).id);
      expect(moved).toMatchObject({ state: 'printed', printer_id: d2.id, total_attempts: 4 });
      expect(readdirSync(inbox)).toEqual([`fapiao-${moved.id}.pdf`]);
      expect(execFileSync('pdftotext', [join(inbox, `fapiao-${moved.id}.pdf`), '-'], { encoding: 'utf8' })).toContain(invoice.number);
      expect(existsSync(missing)).toBe(false);

      // No backup: after maxAttempts the job fails for good, with advice, and the PDF is still there.
      const lonely = body(await send(api.a.keys.owner, 'POST', '/api/v1/printers', { name: '无备用', backend: 'directory', target: join(scratch, 'gone') }));
      const failed = await finished(body(await send(api.a.keys.clerk, 'POST', `/api/v1/invoices/${invoice.number}/print`, { printer_id: lonely.id })).id);
      expect(failed).toMatchObject({ state: 'failed', total_attempts: POLICY.maxAttempts, printer_id: lonely.id });
      expect(failed.last_error).toContain('不可用');
      expect(failed.advice).toContain('手动打印');
      // Both were told to people as alerts: the move to the backup, and the job that cannot print.
      const alerts = body(await api.get(api.a.keys.owner, '/api/v1/alerts', { limit: 200 })).items;
      expect(alerts.filter((a: any) => a.kind === 'print.moved' && a.subject === moved.id)).toHaveLength(1);
      expect(alerts.filter((a: any) => a.kind === 'print.failed' && a.subject === failed.id)).toHaveLength(1);
      const pdf = await api.get(api.a.keys.clerk, failed.pdf);
      expect(pdf.statusCode).toBe(200);
      expect(pdf.rawPayload.subarray(0, 5).toString()).toBe('%PDF-');
    });

    it('refuses bad printer settings and keeps printers and jobs to their merchant', async () => {
      const relative = await send(api.a.keys.owner, 'POST', '/api/v1/printers', { name: 'x', backend: 'directory', target: 'spool/inbox' });
      expect(body<ErrorBody>(relative).error.code).toBe(1032);
      const badQueue = await send(api.a.keys.owner, 'POST', '/api/v1/printers', { name: 'y', backend: 'cups', target: 'front desk; rm -rf /' });
      expect(body<ErrorBody>(badQueue).error.code).toBe(1032);
      // With FAPIAO_PRINT_DIR set (the server always sets it), hot folders stay inside it.
      const owner = { merchantId: api.a.id, role: 'owner' as const, actor: 'test' };
      const confined = { ...api.ports, printDirectoryRoot: scratch };
      await expect(addPrinter(confined, owner, { name: 'etc', backend: 'directory', target: '/etc' })).rejects.toMatchObject({ code: 1032 });
      await expect(addPrinter(confined, owner, { name: 'sibling', backend: 'directory', target: `${scratch}-other/inbox` })).rejects.toMatchObject({ code: 1032 });
      expect((await addPrinter(confined, owner, { name: 'inside', backend: 'directory', target: join(scratch, 'station-1') })).target).toBe(join(scratch, 'station-1'));
      const taken = await send(api.a.keys.owner, 'POST', '/api/v1/printers', { name: '前台', backend: 'cups', target: queueA });
      expect(body<ErrorBody>(taken).error.code).toBe(6024);
      const printers = body(await api.get(api.a.keys.owner, '/api/v1/printers')).items;
      const [first, second] = [printers.find((p: any) => p.name === '热文件夹1'), printers.find((p: any) => p.name === '热文件夹2')];
      const loop = await send(api.a.keys.owner, 'PATCH', `/api/v1/printers/${second.id}`, { backup_printer_id: first.id });
      expect(body<ErrorBody>(loop).error.code).toBe(6025);
      const inUse = await send(api.a.keys.owner, 'DELETE', `/api/v1/printers/${second.id}`);
      expect(body<ErrorBody>(inUse).error.code).toBe(6026);
      expect((await send(api.a.keys.clerk, 'POST', '/api/v1/printers', { name: 'z', backend: 'cups', target: 'Q' })).statusCode).toBe(403);
      expect(body(await api.get(api.b.keys.owner, '/api/v1/printers')).items).toHaveLength(0);
      expect((await api.get(api.b.keys.owner, `/api/v1/printers/${first.id}/status`)).statusCode).toBe(404);
      const someJob = body(await api.get(api.a.keys.clerk, '/api/v1/print-jobs', { limit: 1 })).items[0];
      expect((await api.get(api.b.keys.owner, `/api/v1/print-jobs/${someJob.id}`)).statusCode).toBe(404);
      const notCancellable = await send(api.a.keys.clerk, 'POST', `/api/v1/print-jobs/${someJob.id}/cancel`);
      expect(body<ErrorBody>(notCancellable).error.code).toBe(3032);
    });
  });
}
