// A "hot folder" printer: the PDF is written into a directory that a print station (or a person)
// watches. A job is first written as <title>.pdf.held (never picked up), then renamed to
// <title>.pdf, which is the moment it counts as printed; rename is atomic, so a watcher never sees
// half a file.
import { constants } from 'node:fs';
import { access, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { bilingual, Fault, faults, type Bilingual } from '../../domain/faults.js';
import type { PrinterDriver } from './driver.js';

const TITLE = /^[\w.-]{1,100}$/;

export function directoryPathProblem(path: string): Bilingual | undefined {
  if (!isAbsolute(path)) return bilingual('目录打印机需要绝对路径', 'a directory printer needs an absolute path');
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) return bilingual('路径中不要使用 . 或 .. 段', 'write the path without . or .. segments');
  if (path.length > 500) return bilingual('超过 500 个字符', 'longer than 500 characters');
  return undefined;
}

export function directoryPrinter(dir: string): PrinterDriver {
  const problem = directoryPathProblem(dir);
  if (problem) throw new Fault(faults.PRINTER_TARGET_INVALID, { reason: problem });
  const file = (title: string, held: boolean) => {
    if (!TITLE.test(title)) throw new Fault(faults.PRINTER_COMMAND_FAILED, { reason: bilingual(`打印任务标题不可用：${title}`, `unusable job title ${title}`) });
    return join(dir, held ? `${title}.pdf.held` : `${title}.pdf`);
  };
  const exists = (path: string) => stat(path).then(() => true, () => false);

  return {
    async readiness() {
      try {
        if (!(await stat(dir)).isDirectory()) return { ready: false, reason: bilingual(`${dir} 不是目录`, `${dir} is not a directory`) };
        await access(dir, constants.W_OK);
        return { ready: true };
      } catch (error) {
        return { ready: false, reason: bilingual(`${dir} 无法写入（${errnoOf(error)}）`, `${dir} cannot be written (${errnoOf(error)})`) };
      }
    },
    async submitHeld(document, title) {
      await writeFile(file(title, true), document, { flag: 'w', mode: 0o640 });
      return title;
    },
    async release(title) {
      await rename(file(title, true), file(title, false));
    },
    async state(title) {
      if (await exists(file(title, false))) return 'printed';
      if (await exists(file(title, true))) return 'held';
      return 'unknown';
    },
    async findHeld(title) {
      return (await exists(file(title, true))) ? title : undefined;
    },
    async cancel(title) {
      await unlink(file(title, true)).catch(() => {});
      return (await exists(file(title, false))) ? 'printed' : 'cancelled';
    },
  };
}

function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'error';
}
