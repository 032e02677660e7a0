// Rendered PDFs kept as files under the data directory, named by what determines their bytes:
// the content digest, the signature and the verification URL base. Invoice content never
// changes after issue, so an entry never goes stale; a status change (voided) is not printed on
// the PDF. Files rather than a table: PDFs are large, derived and rebuildable, and each instance
// of a PostgreSQL deployment can keep its own cache. Writes go to a temporary file renamed into
// place, so a reader never sees half a PDF.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Fault, faults } from '../domain/faults.js';
import { renderInvoicePdf, type PdfInvoice } from './pdf.js';

/** Bump when the layout changes, so cached PDFs of the old layout are not served. */
export const LAYOUT_VERSION = 2;

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
        return await readFile(path);
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
}
