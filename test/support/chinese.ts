// What "a Chinese message" means in tests: no run of English words in it, except inside the
// （原文：…） that quotes a library's or the tax service's own words and the commands a remedy names.
// Field names, codes, numbers and single technical words (JSON, CUPS, UTF-8) are fine.

/** The first two English words in a row, or undefined when there are none. */
export function englishRun(zh: string): string | undefined {
  const own = zh.replace(/（原文：[^）]*）/g, '').replace(/\b(?:fapiao|npm|apt-get|chmod) [ -~]*/g, '');
  return /\b[A-Za-z]{2,}\s+[A-Za-z]{2,}\b/.exec(own)?.[0];
}
