// The QR code drawn as vector squares straight into the PDF: sharp at any print resolution,
// no PNG encoding per document, and byte-identical for the same text.
import QRCode from 'qrcode';

export interface QrMatrix {
  size: number;
  /** Row-major, 1 = dark module. */
  dark: Uint8Array;
}

export function qrMatrix(text: string): QrMatrix {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: 'M' });
  return { size: modules.size, dark: Uint8Array.from(modules.data) };
}

/** Horizontal runs of dark modules, one rectangle each: fewer path operators than one per module. */
export function darkRuns(matrix: QrMatrix): Array<{ row: number; col: number; length: number }> {
  const runs: Array<{ row: number; col: number; length: number }> = [];
  for (let row = 0; row < matrix.size; row++) {
    let col = 0;
    while (col < matrix.size) {
      if (!matrix.dark[row * matrix.size + col]) { col++; continue; }
      const start = col;
      while (col < matrix.size && matrix.dark[row * matrix.size + col]) col++;
      runs.push({ row, col: start, length: col - start });
    }
  }
  return runs;
}
