// Fast font subsets for invoices. fontkit's CFF subsetter keeps every subroutine index of the
// font at full length (unused entries become 1-byte stubs): for Noto Sans SC that is 22,000+
// local subroutines of the ideographs, re-encoded for EVERY document, ~60 ms and ~90 KB each.
//
// Instead each glyph's charstring is flattened once per process (its subroutine calls inlined,
// the Type 2 way: same operators, same operands, no calls), and a document's subset is just its
// flattened glyphs with no subroutines at all. The work per document is then proportional to
// the glyphs it uses, and the flattened glyphs are reused by every later document — the "subset
// reuse across documents". Output is still a valid CID-keyed CFF, byte-identical for the same
// glyph set, so renders stay deterministic.
import type { FontkitFont } from './font.js';

interface SubrEntry {
  offset: number;
  length: number;
}

interface Cff {
  stream: { pos: number; readBuffer(length: number): Uint8Array };
  globalSubrIndex: SubrEntry[];
  topDict: { CharStrings: SubrEntry[]; FDArray: Array<{ FontName?: unknown; Private?: { Subrs?: SubrEntry[] } & Record<string, unknown> }> };
  isCIDFont: boolean;
  fdForGlyph(gid: number): number | null;
}

interface Subset {
  glyphs: number[];
  cff: Cff;
  charstrings: Uint8Array[];
  gsubrs: Uint8Array[];
  subsetCharstrings(): void;
  subsetFontdict(topDict: Record<string, any>): void;
}

class Unsupported extends Error {}

// Type 2 operators that compute (arithmetic, storage): a subroutine number could be computed
// with them, so a charstring using them is left to fontkit's own subsetter.
const ARITHMETIC = new Set([3, 4, 5, 9, 10, 11, 12, 14, 15, 18, 20, 21, 22, 23, 24, 26, 27, 28, 29, 30]);

const bias = (count: number) => (count < 1240 ? 107 : count < 33900 ? 1131 : 32768);

/** Inlines the subroutines of one glyph's charstring. */
function flatten(cff: Cff, gid: number): Uint8Array {
  const read = (entry: SubrEntry) => {
    cff.stream.pos = entry.offset;
    return cff.stream.readBuffer(entry.length);
  };
  const fd = cff.isCIDFont ? cff.fdForGlyph(gid) : null;
  const local = (fd === null ? undefined : cff.topDict.FDArray[fd]?.Private?.Subrs) ?? [];
  const global = cff.globalSubrIndex ?? [];
  const out: number[] = [];
  const stack: Array<{ value: number; at: number }> = []; // operands and where their bytes start in out
  let stems = 0;
  let ended = false;

  const run = (code: Uint8Array, depth: number): void => {
    if (depth > 10) throw new Unsupported('subroutines nested too deep');
    let i = 0;
    while (i < code.length && !ended) {
      const b = code[i]!;
      if (b >= 32 || b === 28) {
        let value: number;
        let size: number;
        if (b === 28) { value = ((code[i + 1]! << 24) >> 16) | code[i + 2]!; size = 3; }
        else if (b <= 246) { value = b - 139; size = 1; }
        else if (b <= 250) { value = (b - 247) * 256 + code[i + 1]! + 108; size = 2; }
        else if (b <= 254) { value = -(b - 251) * 256 - code[i + 1]! - 108; size = 2; }
        else { value = NaN; size = 5; } // 16.16 fixed: never a subroutine number
        stack.push({ value, at: out.length });
        for (let k = 0; k < size; k++) out.push(code[i + k]!);
        i += size;
        continue;
      }
      i += 1;
      switch (b) {
        case 10: // callsubr
        case 29: { // callgsubr
          const operand = stack.pop();
          if (!operand || !Number.isInteger(operand.value)) throw new Unsupported('computed subroutine number');
          out.length = operand.at; // the call disappears: its operand bytes go
          const subrs = b === 10 ? local : global;
          const entry = subrs[operand.value + bias(subrs.length)];
          if (!entry) throw new Unsupported('subroutine out of range');
          run(read(entry), depth + 1);
          break;
        }
        case 11: // return
          return;
        case 14: // endchar
          out.push(b);
          ended = true;
          return;
        case 1: case 3: case 18: case 23: // hstem, vstem, hstemhm, vstemhm
          stems += stack.length >> 1;
          out.push(b);
          stack.length = 0;
          break;
        case 19: case 20: { // hintmask, cntrmask: an implicit vstem may precede; then the mask bytes
          stems += stack.length >> 1;
          stack.length = 0;
          out.push(b);
          const bytes = (stems + 7) >> 3;
          for (let k = 0; k < bytes; k++) out.push(code[i + k]!);
          i += bytes;
          break;
        }
        case 12: {
          const op = code[i]!;
          i += 1;
          if (ARITHMETIC.has(op)) throw new Unsupported(`operator 12 ${op}`);
          out.push(12, op);
          stack.length = 0;
          break;
        }
        default:
          out.push(b);
          stack.length = 0;
      }
    }
  };
  run(read(cff.topDict.CharStrings[gid]!), 0);
  return Uint8Array.from(out);
}

/**
 * A font whose subsets are built from flattened glyphs cached for the life of the process.
 * Everything else is the fontkit font itself (prototype delegation).
 */
export function withFastSubsets(font: FontkitFont): FontkitFont {
  const cff = (font as unknown as { 'CFF '?: Cff })['CFF '];
  if (!cff || !cff.isCIDFont) return font; // only the CID-keyed CFF path is needed here
  const flattened = new Map<number, Uint8Array | null>();
  const flat = (gid: number): Uint8Array | null => {
    let cached = flattened.get(gid);
    if (cached === undefined) {
      try {
        cached = flatten(cff, gid);
      } catch (error) {
        if (!(error instanceof Unsupported)) throw error;
        cached = null;
      }
      flattened.set(gid, cached);
    }
    return cached;
  };

  const fast = Object.create(font) as FontkitFont;
  fast.createSubset = () => {
    const subset = font.createSubset() as unknown as Subset;
    const original = { charstrings: subset.subsetCharstrings, fontdict: subset.subsetFontdict };
    let flatOk = true;
    subset.subsetCharstrings = function (this: Subset) {
      const strings = this.glyphs.map(flat);
      flatOk = strings.every((s) => s !== null);
      if (!flatOk) return original.charstrings.call(this); // a glyph we cannot flatten: fontkit's way
      this.charstrings = strings as Uint8Array[];
      this.gsubrs = [];
    };
    subset.subsetFontdict = function (this: Subset, topDict: Record<string, any>) {
      if (!flatOk) return original.fontdict.call(this, topDict);
      // fontkit's FDArray/FDSelect subsetting, without local subroutines.
      topDict.FDArray = [];
      topDict.FDSelect = { version: 0, fds: [] };
      const position = new Map<number, number>();
      for (const gid of this.glyphs) {
        const fd = this.cff.fdForGlyph(gid);
        if (fd === null) continue;
        if (!position.has(fd)) {
          const dict = { ...this.cff.topDict.FDArray[fd]! };
          delete dict.FontName;
          if (dict.Private) dict.Private = { ...dict.Private, Subrs: null as never };
          topDict.FDArray.push(dict);
          position.set(fd, topDict.FDArray.length - 1);
        }
        topDict.FDSelect.fds.push(position.get(fd));
      }
    };
    return subset as never;
  };
  return fast;
}
