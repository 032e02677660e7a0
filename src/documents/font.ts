// The Simplified-Chinese font for invoices: Noto Sans SC (思源黑体) from the @embedpdf/fonts-sc npm
// package, so a fresh `npm ci` has it. Parsed ONCE per process: parsing the 8 MB OTF and the
// outlines of every glyph used is most of the cost of a naive render, and fontkit keeps parsed
// glyphs on the font object, so every later document reuses them.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
// fontkit is pdfkit's own font engine; load the copy pdfkit uses, so the objects match.
const fontkit = createRequire(require.resolve('pdfkit'))('fontkit') as { create(data: Uint8Array): FontkitFont };

/** The part of a fontkit font we touch; pdfkit accepts the object itself as a font source. */
export interface FontkitFont {
  layout(text: string): unknown;
  createSubset(): { includeGlyph(id: number): number; encode(): Uint8Array };
  readonly postscriptName: string;
}

export const FONT_FILES = {
  regular: 'NotoSansHans-Regular.otf',
  bold: 'NotoSansHans-Medium.otf',
} as const;

export type FontWeight = keyof typeof FONT_FILES;

export function fontPath(weight: FontWeight): string {
  // The package's exports hide package.json; its main module sits in dist/, the fonts beside it.
  return join(dirname(require.resolve('@embedpdf/fonts-sc')), '..', 'fonts', FONT_FILES[weight]);
}

const loaded = new Map<FontWeight, FontkitFont>();

/** The parsed font, shared by every document this process renders. */
export function invoiceFont(weight: FontWeight): FontkitFont {
  let font = loaded.get(weight);
  if (!font) {
    font = fontkit.create(readFileSync(fontPath(weight)));
    loaded.set(weight, font);
  }
  return font;
}
