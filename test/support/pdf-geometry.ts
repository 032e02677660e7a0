// Where things are on a rendered PDF page, found the way a person checks a print: the words and
// their boxes as poppler extracts them (pdftotext -bbox), and the frame's rules as they appear in
// a picture of the page (pdftoppm). Nothing here asks the layout code where it meant to draw.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A rectangle in PDF points, y growing downwards (pdftotext's orientation). */
export interface Box {
  xMin: number;
  yMin: number;
  xMax: number;
  yMax: number;
}

export interface Word extends Box {
  text: string;
  /** From 1. */
  page: number;
}

export interface Page {
  width: number;
  height: number;
}

const ENTITIES: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&apos;': "'" };

/** Every word of the document with its box, as pdftotext reads it. */
export function pdfWords(file: string): { pages: Page[]; words: Word[] } {
  const html = execFileSync('pdftotext', ['-bbox', file, '-'], { encoding: 'utf8' });
  const pages: Page[] = [];
  const words: Word[] = [];
  for (const match of html.matchAll(/<page width="([\d.]+)" height="([\d.]+)">|<word xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" yMax="([\d.-]+)">([^<]*)<\/word>/g)) {
    if (match[1] !== undefined) {
      pages.push({ width: Number(match[1]), height: Number(match[2]) });
      continue;
    }
    const text = match[7]!.replace(/&\w+;/g, (entity) => ENTITIES[entity] ?? entity);
    words.push({ text, page: pages.length, xMin: Number(match[3]), yMin: Number(match[4]), xMax: Number(match[5]), yMax: Number(match[6]) });
  }
  return { pages, words };
}

/** A straight rule: horizontal (at `at` from `from` to `to` along x) or vertical (at x, along y). */
export interface Rule {
  at: number;
  from: number;
  to: number;
}

export interface Rules {
  horizontal: Rule[];
  vertical: Rule[];
}

const DPI = 200;
const POINTS_PER_PIXEL = 72 / DPI;
// Text in the frame's colour (labels, the title) has no stroke this long; every rule of the
// invoice is longer (the shortest, beside 价税合计, is 26 pt).
const MIN_RULE_POINTS = 24;

/**
 * The rules drawn in `colour` (#rrggbb) on one page: rows and columns of the page's picture
 * holding a run of that colour at least MIN_RULE_POINTS long, neighbouring runs merged into one
 * rule at their middle.
 */
export function pdfRules(file: string, page: number, colour: string, work: string): Rules {
  const base = join(work, `rules-${page}`);
  execFileSync('pdftoppm', ['-f', String(page), '-l', String(page), '-r', String(DPI), '-singlefile', file, base]);
  const picture = readPpm(`${base}.ppm`);
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16));
  const isRule = (x: number, y: number) => {
    const at = picture.offset + (y * picture.width + x) * 3;
    const d = picture.data;
    // Within a little of the colour: the anti-aliased edges of a rule are paler and left out.
    return Math.abs(d[at]! - r!) < 40 && Math.abs(d[at + 1]! - g!) < 40 && Math.abs(d[at + 2]! - b!) < 40;
  };
  const minRun = MIN_RULE_POINTS / POINTS_PER_PIXEL;
  return {
    horizontal: mergeRuns(runs(picture.height, picture.width, minRun, (row, col) => isRule(col, row))),
    vertical: mergeRuns(runs(picture.width, picture.height, minRun, (col, row) => isRule(col, row))),
  };
}

/** The rectangle of rules around a point: the nearest rule on each side that passes it. */
export function cellAround(rules: Rules, x: number, y: number): Box {
  const passing = (along: number) => (rule: Rule) => rule.from <= along && along <= rule.to;
  const verticals = rules.vertical.filter(passing(y)).map((rule) => rule.at);
  const horizontals = rules.horizontal.filter(passing(x)).map((rule) => rule.at);
  return {
    xMin: Math.max(...verticals.filter((at) => at < x)),
    xMax: Math.min(...verticals.filter((at) => at > x)),
    yMin: Math.max(...horizontals.filter((at) => at < y)),
    yMax: Math.min(...horizontals.filter((at) => at > y)),
  };
}

export function overlap(a: Box, b: Box): boolean {
  const EDGE = 0.01; // boxes that only touch (a label and the value right after it) do not overlap
  return a.xMin < b.xMax - EDGE && b.xMin < a.xMax - EDGE && a.yMin < b.yMax - EDGE && b.yMin < a.yMax - EDGE;
}

/** Whether `inner` lies within `outer` with at least `margin` points to spare on every side. */
export function within(inner: Box, outer: Box, margin = 0): boolean {
  return inner.xMin >= outer.xMin + margin && inner.xMax <= outer.xMax - margin && inner.yMin >= outer.yMin + margin && inner.yMax <= outer.yMax - margin;
}

interface Run {
  line: number;
  from: number;
  to: number;
}

/** Runs of `hit` at least `minRun` long along each of `lines` lines of `length` pixels. */
function runs(lines: number, length: number, minRun: number, hit: (line: number, position: number) => boolean): Run[] {
  const found: Run[] = [];
  for (let line = 0; line < lines; line++) {
    let start = -1;
    for (let position = 0; position <= length; position++) {
      const on = position < length && hit(line, position);
      if (on && start < 0) start = position;
      if (!on && start >= 0) {
        if (position - start >= minRun) found.push({ line, from: start, to: position - 1 });
        start = -1;
      }
    }
  }
  return found;
}

/** Runs on neighbouring lines that overlap are one rule (a rule is two or three pixels thick). */
function mergeRuns(found: Run[]): Rule[] {
  const groups: Run[][] = [];
  for (const run of found) {
    const group = groups.find((g) => {
      const last = g.at(-1)!;
      return run.line - last.line <= 1 && run.from <= last.to && last.from <= run.to;
    });
    if (group) group.push(run);
    else groups.push([run]);
  }
  return groups.map((group) => ({
    at: ((group[0]!.line + group.at(-1)!.line) / 2 + 0.5) * POINTS_PER_PIXEL,
    from: Math.min(...group.map((run) => run.from)) * POINTS_PER_PIXEL,
    to: (Math.max(...group.map((run) => run.to)) + 1) * POINTS_PER_PIXEL,
  }));
}

function readPpm(file: string): { width: number; height: number; data: Buffer; offset: number } {
  const data = readFileSync(file);
  // "P6\n<width> <height>\n255\n" then RGB bytes.
  const header = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(data.subarray(0, 40).toString('latin1'));
  if (!header) throw new Error(`${file} is not a binary PPM picture`);
  return { width: Number(header[1]), height: Number(header[2]), data, offset: header[0].length };
}
