// The Simplified-Chinese font for invoices: Noto Sans SC (思源黑体) from the @embedpdf/fonts-sc npm
// package, so a fresh `npm ci` has it. Parsed ONCE per process: parsing the 8 MB OTF and the
// outlines of every glyph used is most of the cost of a naive render, and fontkit keeps parsed
// glyphs on the font object, so every later document reuses them.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { withFastSubsets } from './font-subset.js';

const require = createRequire(import.meta.url);
// fontkit is pdfkit's own font engine; load the copy pdfkit uses, so the objects match.
const fontkit = createRequire(require.resolve('pdfkit'))('fontkit') as { create(data: Uint8Array): FontkitFont };

/** The part of a fontkit font we touch; pdfkit accepts the object itself as a font source. */
export interface FontkitFont {
  layout(text: string, features?: unknown): GlyphRun;
  createSubset(): { includeGlyph(id: number): number; encode(): Uint8Array };
  readonly postscriptName: string;
  /** Every code point the font maps to a glyph (from its cmap). */
  readonly characterSet: number[];
}

interface GlyphPosition {
  xAdvance: number;
  yAdvance: number;
  xOffset: number;
  yOffset: number;
}

interface GlyphRun {
  glyphs: unknown[];
  positions: GlyphPosition[];
  readonly advanceWidth: number;
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
    font = withLayoutCache(withFastSubsets(parseFont(weight)));
    loaded.set(weight, font);
  }
  return font;
}

let printable: ReadonlySet<number> | undefined;

/**
 * The characters an invoice can print: those the font has a glyph for. Everything a person types
 * is set in the regular weight (layout.ts). Every text that is printed is checked against it as
 * it enters (an issue, a saved entry, a merchant, an API key's label), so a character the font
 * lacks is refused instead of printing as an empty box. Made once per process from a font parsed
 * for this alone and then dropped: its character map takes some 35 ms, where the shared font
 * above would first parse its outlines too (another 100 ms), which issuing never needs. Each
 * lookup is then one Set.has per character.
 */
export function printableCharacters(): ReadonlySet<number> {
  printable ??= new Set(parseFont('regular').characterSet);
  return printable;
}

function parseFont(weight: FontWeight): FontkitFont {
  return fontkit.create(readFileSync(fontPath(weight)));
}

const MAX_CACHED_RUNS = 50_000;

/**
 * Shaping a string (OpenType features, GSUB/GPOS lookups) costs more than drawing it, and the
 * labels of the form repeat on every invoice: runs are cached per process. pdfkit scales the
 * positions of a run in place, so every caller gets fresh position objects.
 */
function withLayoutCache(font: FontkitFont): FontkitFont {
  const runs = new Map<string, GlyphRun>();
  const cached = Object.create(font) as FontkitFont;
  cached.layout = (text: string, features?: unknown) => {
    if (features) return font.layout(text, features);
    let run = runs.get(text);
    if (!run) {
      if (runs.size >= MAX_CACHED_RUNS) runs.clear();
      run = font.layout(text);
      runs.set(text, run);
    }
    const positions = run.positions.map((p) => ({ xAdvance: p.xAdvance, yAdvance: p.yAdvance, xOffset: p.xOffset, yOffset: p.yOffset }));
    return {
      glyphs: run.glyphs,
      positions,
      get advanceWidth() {
        let width = 0;
        for (const p of positions) width += p.xAdvance;
        return width;
      },
    };
  };
  return cached;
}
