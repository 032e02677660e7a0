// A "hot folder" printer: the PDF is written into a directory that a print station (or a person)
// watches. A job is first written as <title>.pdf.held (never picked up), then renamed to
// <title>.pdf, which is the moment it counts as printed; rename is atomic, so a watcher never sees
// half a file.
import { constants } from 'node:fs';
import { access, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { Fault, faults } from '../../domain/faults.js';
import type { PrinterDriver } from './driver.js';

const TITLE = /^[\w.-]{1,100}$/;

export function directoryPathProblem(path: string): string | undefined {
  if (!isAbsolute(path)) return 'a directory printer needs an absolute path';
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) return 'write the path without . or .. segments';
  if (path.length > 500) return 'longer than 500 characters';
  return undefined;
}

export function directoryPrinter(dir: string): PrinterDriver {
  const problem = directoryPathProblem(dir);
  if (problem) throw new Fault(faults.PRINTER_TARGET_INVALID, { reason: problem });
  const file = (title: string, held: boolean) => {
    if (!TITLE.test(title)) throw new Fault(faults.PRINTER_COMMAND_FAILED, { reason: `unusable job title ${title}` });
    return join(dir, held ? `${title}.pdf.held` : `${title}.pdf`);
  };
  const exists = (path: string) => stat(path).then(() => true, () => false);

  return {
    async readiness() {
      try {
        if (!(await stat(dir)).isDirectory()) return { ready: false, reason: `${dir} is not a directory` };
        await access(dir, constants.W_OK);
        return { ready: true };
      } catch (error) {
        return { ready: false, reason: `${dir} cannot be written (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
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
