// Rendered PDFs kept as files under the data directory, named by what determines their bytes:
// the content digest, the signature and the verification URL base. Invoice content never
// changes after issue, so an entry never goes stale; a status change (voided) is not printed on
// the PDF. Files rather than a table: PDFs are large, derived and rebuildable, and each instance
// of a PostgreSQL deployment can keep its own cache. Writes go to a temporary file renamed into
// place, so a reader never sees half a PDF.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Fault, faults } from '../domain/faults.js';
import { renderInvoicePdf, type PdfInvoice } from './pdf.js';

/** Bump when the layout changes, so cached PDFs of the old layout are not served. */
export const LAYOUT_VERSION = 4;

/** A PDF not asked for in this long is removed by prune(); rendering it again takes ~10 ms. */
export const PDF_CACHE_DAYS = 30;

export class PdfCache {
  constructor(private readonly options: { publicUrl: string; dir?: string }) {}

  async pdfFor(invoice: PdfInvoice): Promise<Buffer> {
    const dir = this.options.dir;
    const key = createHash('sha256')
      .update(`${LAYOUT_VERSION}\n${invoice.digest}\n${invoice.signature?.keyId ?? ''}:${invoice.signature?.value ?? ''}\n${this.options.publicUrl}`)
      .digest('hex');
    const path = dir && join(dir, key.slice(0, 2), `${key}.pdf`);
    if (path) {
      try {
        const cached = await readFile(path);
        const now = new Date();
        await utimes(path, now, now).catch(() => {}); // recently used files stay (see prune)
        return cached;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    let pdf: Buffer;
    try {
      pdf = await renderInvoicePdf(invoice, { publicUrl: this.options.publicUrl });
    } catch (error) {
      throw new Fault(faults.PDF_RENDER_FAILED, { number: invoice.number }, [{ field: 'pdf', issue: (error as Error).message }]);
    }
    if (path) {
      // A cache that cannot be written (disk full) must not stop the download.
      try {
        await mkdir(join(dir!, key.slice(0, 2)), { recursive: true });
        const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
        await writeFile(temp, pdf);
        await rename(temp, path);
      } catch {
        /* served uncached */
      }
    }
    return pdf;
  }

  /**
   * Removes PDFs not used for `days` days (and temporary files left by a crash), so the cache
   * keeps what is being printed and downloaded instead of growing with every invoice ever shown.
   */
  async prune(days = PDF_CACHE_DAYS, now = Date.now()): Promise<number> {
    const dir = this.options.dir;
    if (!dir) return 0;
    const cutoff = now - days * 24 * 3600_000;
    let removed = 0;
    let shards: string[];
    try {
      shards = await readdir(dir);
    } catch {
      return 0; // nothing cached yet
    }
    for (const shard of shards) {
      let files: string[];
      try {
        files = await readdir(join(dir, shard));
      } catch {
        continue;
      }
      for (const file of files) {
        const path = join(dir, shard, file);
        try {
          const info = await stat(path);
          const stale = file.endsWith('.tmp') ? info.mtimeMs < now - 3600_000 : info.mtimeMs < cutoff;
          if (stale) {
            await unlink(path);
            removed += 1;
          }
        } catch {
          // removed meanwhile by another instance
        }
      }
    }
    return removed;
  }
}
