// `fapiao simulator`: run the sandbox tax service on its own, and switch its faults at run time
// (`fault <mode>`, `fault clear`, `fault show`), read its per-number upload counters (`uploads`)
// and set a seller's terms (`terms`). Works the same against the sandbox mounted at /sandbox.
import { type Command, Option } from 'commander';
import { bilingual, Fault, faults, withOriginal } from '../domain/faults.js';
import { FAULT_MODES, isFaultMode } from '../upstream/simulator/faults.js';
import { startSandbox } from '../upstream/simulator/server.js';
import { printJson, reportError } from './output.js';

const json = new Option('--json', 'print JSON');
const defaultUrl = () => process.env.FAPIAO_SANDBOX_URL ?? `http://127.0.0.1:${process.env.PORT || 8080}/sandbox`;
const urlOption = () => new Option('--url <url>', 'the sandbox\'s base URL (standalone: http://127.0.0.1:<port>; in-process: http://127.0.0.1:<PORT>/sandbox); default $FAPIAO_SANDBOX_URL, else http://127.0.0.1:$PORT/sandbox');
const tokenOption = () => new Option('--admin-token <token>', 'the sandbox\'s admin token, if it was started with one').env('FAPIAO_SANDBOX_ADMIN_TOKEN');

export function registerSimulatorCommands(program: Command): void {
  const simulator = program.command('simulator').description('the sandbox tax service (沙箱税务服务): run it, inject faults, read its counters')
    .option('--port <port>', 'port to listen on', '9400')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--data-dir <dir>', 'where the sandbox keeps its database (survives restarts)', 'sandbox-data')
    .option('--closed-enrollment', 'refuse POST /v1/enroll (keys only from the operator)')
    .addOption(tokenOption())
    .addOption(json)
    .action(async (o: { port: string; host: string; dataDir: string; closedEnrollment?: boolean; adminToken?: string; json?: boolean }) => {
      try {
        const port = Number(o.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Fault(faults.FIELD_INVALID, { field: '--port', reason: bilingual('应为 0–65535 之间的端口号', 'a port number 0-65535') });
        const sandbox = await startSandbox({ dataDir: o.dataDir, port, host: o.host, openEnrollment: !o.closedEnrollment, ...(o.adminToken && { adminToken: o.adminToken }) });
        if (o.json) printJson({ sandbox: true, url: sandbox.url, data_dir: o.dataDir, pid: process.pid });
        else console.log(`沙箱税务服务（非真实税务系统）/ SANDBOX tax service (not the real tax service) listening on ${sandbox.url}\n  data: ${o.dataDir}\n  faults: fapiao simulator fault <mode> --url ${sandbox.url}`);
        const stop = () => void sandbox.close().then(() => process.exit(0));
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      } catch (error) {
        process.exitCode = reportError(error, Boolean(o.json));
      }
    });

  simulator.command('fault')
    .description(`set a fault: ${Object.keys(FAULT_MODES).join(', ')}; or "clear [mode]", or "show"`)
    .argument('<mode>', 'a fault mode, "clear" or "show"')
    .argument('[which]', 'with clear: only this mode')
    .option('--rate <r>', 'share of requests (records, for reject and partial) affected, 0-1', '1')
    .option('--seconds <s>', 'end the fault by itself after this many seconds')
    .option('--delay-ms <ms>', 'slow: extra milliseconds per answer (default 2000)')
    .option('--wait-seconds <s>', 'flow_control: the wait asked for after each upload (default 2)')
    .addOption(new Option('--kind <kind>', 'reject: only invoices of this kind').choices(['normal', 'special']))
    .option('--min-amount-fen <fen>', 'reject: only invoices with at least this pre-tax amount (fen)')
    .addOption(urlOption()).addOption(tokenOption()).addOption(json)
    .action(async (mode: string, which: string | undefined, _o: unknown, command: Command) => {
      // --json and --admin-token are also options of `simulator` itself, which commander lets take them.
      const o = command.optsWithGlobals() as Record<string, string | boolean | undefined>;
      try {
        const url = (o.url as string | undefined) ?? defaultUrl();
        let answer: { faults: Array<Record<string, unknown>> };
        if (mode === 'show') answer = await admin(url, 'GET', '/admin/faults', o.adminToken as string | undefined);
        else if (mode === 'clear') {
          if (which !== undefined && !isFaultMode(which)) throw invalid(`未知的故障模式“${which}”`, `unknown fault mode "${which}"`);
          answer = await admin(url, 'DELETE', which ? `/admin/faults/${which}` : '/admin/faults', o.adminToken as string | undefined);
        } else {
          if (!isFaultMode(mode)) throw invalid(`未知的故障模式“${mode}”，应为 ${[...Object.keys(FAULT_MODES), 'clear', 'show'].join('、')} 之一`, `unknown fault mode "${mode}"; one of ${Object.keys(FAULT_MODES).join(', ')}, clear, show`);
          const body = {
            rate: numberOption(o.rate, '--rate', (n) => n >= 0 && n <= 1),
            seconds: numberOption(o.seconds, '--seconds', (n) => n > 0),
            delay_ms: numberOption(o.delayMs, '--delay-ms', (n) => n >= 0 && n <= 600_000),
            wait_seconds: numberOption(o.waitSeconds, '--wait-seconds', (n) => Number.isInteger(n) && n >= 0 && n <= 3600),
            kind: o.kind,
            min_amount_fen: o.minAmountFen === undefined ? undefined : /^\d{1,18}$/.test(String(o.minAmountFen)) ? String(o.minAmountFen) : (() => { throw wholeFen('--min-amount-fen'); })(),
          };
          answer = await admin(url, 'PUT', `/admin/faults/${mode}`, o.adminToken as string | undefined, body);
        }
        if (o.json) return printJson(answer);
        if (answer.faults.length === 0) console.log('no faults: the sandbox behaves');
        for (const f of answer.faults) {
          const until = typeof f.until === 'number' ? ` until ${new Date(f.until).toISOString()}` : '';
          console.log(`${f.mode}\trate ${f.rate}${until}${f.delayMs !== undefined ? `\tdelay ${f.delayMs} ms` : ''}${f.waitSeconds !== undefined ? `\twait ${f.waitSeconds} s` : ''}${f.kind ? `\tkind ${f.kind}` : ''}${f.minAmountFen ? `\tfrom ${f.minAmountFen} fen` : ''}\t— ${f.description}`);
        }
      } catch (error) {
        process.exitCode = reportError(error, Boolean(o.json));
      }
    });

  simulator.command('uploads').description('per-number upload counters: submissions, accepted, duplicates, conflicts, rejections, failed; void requests, voids, void refusals')
    .option('--seller <taxId>').option('--number <number>')
    .addOption(urlOption()).addOption(tokenOption()).addOption(json)
    .action(async (_o: unknown, command: Command) => {
      const o = command.optsWithGlobals() as { seller?: string; number?: string; url?: string; adminToken?: string; json?: boolean };
      try {
        const query = new URLSearchParams({ ...(o.seller && { seller: o.seller }), ...(o.number && { number: o.number }) });
        const answer = await admin(o.url ?? defaultUrl(), 'GET', `/admin/uploads${query.size ? `?${query}` : ''}`, o.adminToken);
        if (o.json) return printJson(answer);
        const t = answer.totals as Record<string, number>;
        console.log(`${t.numbers} numbers: ${t.submissions} submissions, ${t.accepted} accepted, ${t.duplicates} duplicates, ${t.conflicts} conflicts, ${t.rejections} rejections, ${t.failed} failed; ${t.void_requests} void requests, ${t.voids} voids, ${t.void_refusals} void refusals`);
        for (const i of answer.items as Array<Record<string, unknown>>) {
          if (i.accepted !== 1 || i.duplicates || i.conflicts) console.log(`  ${i.seller} ${i.number}: accepted ${i.accepted}, duplicates ${i.duplicates}, conflicts ${i.conflicts}, rejections ${i.rejections}`);
        }
      } catch (error) {
        process.exitCode = reportError(error, Boolean(o.json));
      }
    });
  simulator.command('terms').description('show or set a seller\'s terms: credit line (授信额度) and contingency limits per kind')
    .requiredOption('--seller <taxId>')
    .option('--monthly-credit-fen <fen>', 'pre-tax fen per month, or "none"')
    .option('--normal-hours <h>').option('--normal-amount-fen <fen>')
    .option('--special-hours <h>').option('--special-amount-fen <fen>')
    .addOption(urlOption()).addOption(tokenOption()).addOption(json)
    .action(async (_o: unknown, command: Command) => {
      const o = command.optsWithGlobals() as Record<string, string | boolean | undefined>;
      try {
        const url = (o.url as string | undefined) ?? defaultUrl();
        const path = `/admin/terms/${encodeURIComponent(String(o.seller))}`;
        let terms = await admin(url, 'GET', path, o.adminToken as string | undefined);
        const changes = ['monthlyCreditFen', 'normalHours', 'normalAmountFen', 'specialHours', 'specialAmountFen'].some((k) => o[k] !== undefined);
        if (changes) {
          const fen = (value: unknown, name: string) => {
            if (!/^\d{1,18}$/.test(String(value))) throw wholeFen(name);
            return String(value);
          };
          const contingency = (terms.contingency as Array<{ kind: string; max_offline_hours: number; max_offline_amount_fen: string }>).map((c) => {
            const hours = o[`${c.kind}Hours`];
            const amount = o[`${c.kind}AmountFen`];
            return {
              kind: c.kind,
              max_offline_hours: hours === undefined ? c.max_offline_hours : numberOption(hours, `--${c.kind}-hours`, (n) => n > 0)!,
              max_offline_amount_fen: amount === undefined ? c.max_offline_amount_fen : fen(amount, `--${c.kind}-amount-fen`),
            };
          });
          const credit = o.monthlyCreditFen === undefined ? terms.monthly_credit_fen : o.monthlyCreditFen === 'none' ? null : fen(o.monthlyCreditFen, '--monthly-credit-fen');
          terms = await admin(url, 'PUT', path, o.adminToken as string | undefined, { monthly_credit_fen: credit, contingency });
        }
        if (o.json) return printJson(terms);
        console.log(`${o.seller}: monthly credit ${terms.monthly_credit_fen === null ? 'none' : `${terms.monthly_credit_fen} fen`}`);
        for (const c of terms.contingency) console.log(`  ${c.kind}: offline at most ${c.max_offline_hours} h and ${c.max_offline_amount_fen} fen`);
      } catch (error) {
        process.exitCode = reportError(error, Boolean(o.json));
      }
    });
}

function invalid(zh: string, en: string): Fault {
  return new Fault(faults.SANDBOX_FAULT_INVALID, { reason: bilingual(zh, en) });
}

function wholeFen(option: string): Fault {
  return invalid(`${option}：应为以分为单位的整数`, `${option}: fen as whole digits`);
}

function numberOption(value: unknown, name: string, ok: (n: number) => boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || !ok(n)) throw invalid(`${name} ${String(value)} 超出允许范围`, `${name} ${String(value)} is out of range`);
  return n;
}

async function admin(url: string, method: string, path: string, token: string | undefined, body?: object): Promise<any> {
  let response: Response;
  try {
    response = await fetch(`${url.replace(/\/+$/, '')}${path}`, {
      method,
      headers: { ...(body && { 'content-type': 'application/json' }), ...(token && { 'x-sandbox-admin-token': token }) },
      ...(body && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    const e = error as { cause?: { code?: string }; message: string };
    throw new Fault(faults.UPSTREAM_UNREACHABLE, { reason: withOriginal(`无法连接 ${url}`, e.cause?.code ?? e.message, url) });
  }
  const answer = (await response.json().catch(() => undefined)) as { sandbox?: boolean; error?: { code: string; message: string } } | undefined;
  if (!answer?.sandbox) throw new Fault(faults.UPSTREAM_PROTOCOL_ERROR, { reason: bilingual(`${url} 不是 Fapiao 沙箱（HTTP ${response.status}）`, `${url} is not a Fapiao sandbox (HTTP ${response.status})`) });
  if (answer.error) throw new Fault(faults.SANDBOX_FAULT_INVALID, { reason: withOriginal('沙箱拒绝了该设置', `${answer.error.code}: ${answer.error.message}`) });
  return answer;
}
