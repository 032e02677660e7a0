#!/usr/bin/env node
// The `fapiao` command. `npm ci` compiles src/ to dist/ (the `prepare` script); when dist/ is at
// least as new as every source file it runs, and a server process starts in about a third of the
// time. Otherwise (a source edited since the last `npm run build`) the TypeScript runs directly
// through tsx, so what runs is always the source as it is now.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const compiled = `${root}dist/cli/main.js`;

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

if (existsSync(compiled) && statSync(compiled).mtimeMs >= newestSource(`${root}src`)) {
  await import(compiled);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
