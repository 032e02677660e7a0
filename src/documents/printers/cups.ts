// A CUPS queue (lp, lpstat, cancel, and ipptool for exact job states). `lpstat -W completed`
// cannot tell a printed job from a cancelled one, and a retry must know which it was, so job
// states come from IPP Get-Job-Attributes (ipptool, package cups-ipp-utils).
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bilingual, Fault, faults, withOriginal } from '../../domain/faults.js';
import type { PrinterDriver, RemoteJobState } from './driver.js';

const TIMEOUT_MS = 10_000;
export const CUPS_QUEUE_NAME = /^[A-Za-z0-9_.-]{1,127}$/;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], input?: Buffer): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { timeout: TIMEOUT_MS, maxBuffer: 1 << 20, env: { ...process.env, LANG: 'C', LC_ALL: 'C' } }, (error, stdout, stderr) => {
      const errno = (error as NodeJS.ErrnoException | null)?.code;
      if (errno === 'ENOENT') return reject(new Fault(faults.PRINTER_COMMAND_FAILED, {
        reason: bilingual(`未安装 ${command}（apt-get install cups-client cups-ipp-utils）`, `${command} is not installed (apt-get install cups-client cups-ipp-utils)`),
      }));
      if (error && (error as { killed?: boolean }).killed) return reject(new Fault(faults.PRINTER_COMMAND_FAILED, { reason: bilingual(`${command} 在 ${TIMEOUT_MS / 1000} 秒内没有应答`, `${command} gave no answer within ${TIMEOUT_MS / 1000} s`) }));
      resolve({ code: typeof errno === 'number' ? errno : error ? 1 : 0, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

// ipptool reads its requests from files; these two are written once per process. CUPS shows job
// names only to the job's owner, hence requesting-user-name ($user: the user running us, who ran lp).
let testFiles: { jobState: string; heldJobs: string } | undefined;
function ippTests() {
  if (testFiles) return testFiles;
  const dir = mkdtempSync(join(tmpdir(), 'fapiao-ipp-'));
  const common = 'GROUP operation-attributes-tag\n ATTR charset attributes-charset utf-8\n ATTR language attributes-natural-language en\n';
  const jobState = join(dir, 'job-state.test');
  writeFileSync(jobState, `{\n NAME "job state"\n OPERATION Get-Job-Attributes\n ${common} ATTR uri job-uri $uri\n ATTR keyword requested-attributes job-state\n STATUS successful-ok\n DISPLAY job-state\n}\n`);
  const heldJobs = join(dir, 'held-jobs.test');
  writeFileSync(heldJobs, `{\n NAME "waiting jobs"\n OPERATION Get-Jobs\n ${common} ATTR uri printer-uri $uri\n ATTR name requesting-user-name $user\n ATTR keyword which-jobs not-completed\n ATTR keyword requested-attributes job-id,job-state,job-name\n STATUS successful-ok\n DISPLAY job-id\n DISPLAY job-state\n DISPLAY job-name\n}\n`);
  testFiles = { jobState, heldJobs };
  return testFiles;
}

const ippStates: Record<string, RemoteJobState> = {
  'pending-held': 'held', pending: 'pending', processing: 'printing', 'processing-stopped': 'pending',
  canceled: 'cancelled', aborted: 'cancelled', completed: 'printed',
};

/** The job number inside a CUPS request id ("QUEUE-12" → 12). */
function jobNumber(externalId: string): string {
  const number = /-(\d+)$/.exec(externalId)?.[1];
  if (!number) throw new Fault(faults.PRINTER_COMMAND_FAILED, { reason: bilingual(`“${externalId}”不是 CUPS 打印请求编号`, `"${externalId}" is not a CUPS request id`) });
  return number;
}

function failure(command: string, result: Run): Fault {
  const text = (result.stderr || result.stdout).trim().split('\n')[0] ?? '';
  const original = text.slice(0, 200) || `exit ${result.code}`;
  return new Fault(faults.PRINTER_COMMAND_FAILED, { reason: withOriginal(`${command} 执行失败`, original, command) });
}

export function cupsPrinter(queue: string, server = 'localhost'): PrinterDriver {
  if (!CUPS_QUEUE_NAME.test(queue)) throw new Fault(faults.PRINTER_TARGET_INVALID, { reason: bilingual(`“${queue}”不是 CUPS 队列名`, `"${queue}" is not a CUPS queue name`) });
  const jobUri = (externalId: string) => `ipp://${server}/jobs/${jobNumber(externalId)}`;

  return {
    async readiness() {
      const status = await run('lpstat', ['-p', queue]);
      if (status.code !== 0) {
        const text = `${status.stderr}${status.stdout}`;
        if (/scheduler is not running|connect/i.test(text)) return { ready: false, reason: bilingual('CUPS 调度程序（cupsd）未运行', 'the CUPS scheduler (cupsd) is not running') };
        return { ready: false, reason: bilingual(`CUPS 中没有名为 ${queue} 的打印机`, `CUPS has no printer named ${queue}`) };
      }
      if (/\bdisabled\b/.test(status.stdout)) {
        const why = status.stdout.split('\n').slice(1).map((l) => l.trim()).filter(Boolean).join('; ');
        const stopped = bilingual(`CUPS 队列 ${queue} 已停用`, `the CUPS queue ${queue} is stopped`);
        return { ready: false, reason: why ? withOriginal(stopped.zh, why, stopped.en) : stopped };
      }
      const accepting = await run('lpstat', ['-a', queue]);
      if (accepting.code !== 0 || /not accepting/.test(accepting.stdout)) return { ready: false, reason: bilingual(`CUPS 队列 ${queue} 不接受新任务`, `the CUPS queue ${queue} is not accepting jobs`) };
      return { ready: true };
    },

    async submitHeld(document, title) {
      const result = await run('lp', ['-d', queue, '-t', title, '-H', 'indefinite', '-o', 'fit-to-page'], document);
      const id = /request id is (\S+)/.exec(result.stdout)?.[1];
      if (result.code !== 0 || !id) throw failure('lp', result);
      return id;
    },

    async release(externalId) {
      const result = await run('lp', ['-i', externalId, '-H', 'resume']);
      if (result.code !== 0) throw failure('lp -H resume', result);
    },

    async state(externalId) {
      const result = await run('ipptool', ['-c', '-T', '5', jobUri(externalId), ippTests().jobState]);
      if (result.code !== 0) {
        if (/not-found|does not exist/i.test(result.stdout + result.stderr)) return 'unknown';
        throw failure('ipptool', result);
      }
      const value = result.stdout.trim().split('\n')[1]?.trim() ?? '';
      return ippStates[value] ?? 'unknown';
    },

    async findHeld(title) {
      const result = await run('ipptool', ['-c', '-T', '5', `ipp://${server}/printers/${queue}`, ippTests().heldJobs]);
      if (result.code !== 0) throw failure('ipptool', result);
      for (const line of result.stdout.trim().split('\n').slice(1)) {
        const [id, state, ...name] = line.split(',');
        if (name.join(',') === title && (state === 'pending-held' || state === 'pending')) return `${queue}-${id}`;
      }
      return undefined;
    },

    async cancel(externalId) {
      await run('cancel', [externalId]); // refused when already finished; the state says which way
      return this.state(externalId);
    },
  };
}
