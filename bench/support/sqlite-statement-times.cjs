// Where a server process's SQLite time goes, statement by statement: preloaded into every process
// of a server (`NODE_OPTIONS=--require …`, which cluster workers inherit), it times each call of
// better-sqlite3's run/get/all and, when the process exits (a server does on SIGTERM, not on
// SIGKILL), writes one JSON file per process to FAPIAO_STATEMENT_TIMES_DIR: calls and wall
// nanoseconds per statement text (its first 140 characters), with the process's arguments and
// role. Wall time, not CPU: a statement that waits for the disk counts its wait. A diagnosis tool
// for the benchmarks, never loaded by the product.
//
//   mkdir -p /tmp/st && FAPIAO_STATEMENT_TIMES_DIR=/tmp/st \
//     NODE_OPTIONS="--require $PWD/bench/support/sqlite-statement-times.cjs" npm start
//
// (A benchmark passes both in the server's env.) CommonJS, so that --require loads it before any
// ES module of the server.
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const Database = require('better-sqlite3');

const directory = process.env.FAPIAO_STATEMENT_TIMES_DIR;
if (!directory) throw new Error('sqlite-statement-times: set FAPIAO_STATEMENT_TIMES_DIR to the directory the times go to');

const times = new Map();
const probe = new Database(':memory:');
const Statement = Object.getPrototypeOf(probe.prepare('select 1'));
probe.close();
for (const method of ['run', 'get', 'all']) {
  const original = Statement[method];
  Statement[method] = function timed(...parameters) {
    const started = process.hrtime.bigint();
    try {
      return original.apply(this, parameters);
    } finally {
      const key = this.source.replace(/\s+/g, ' ').slice(0, 140);
      const entry = times.get(key) ?? { calls: 0, ns: 0 };
      entry.calls += 1;
      entry.ns += Number(process.hrtime.bigint() - started);
      times.set(key, entry);
    }
  };
}

process.on('exit', () => {
  if (times.size === 0) return;
  const statements = [...times].map(([sql, t]) => ({ sql, ...t })).sort((a, b) => b.ns - a.ns);
  const role = process.env.FAPIAO_PROCESS_ROLE ?? (process.env.NODE_UNIQUE_ID ? 'http' : 'main');
  writeFileSync(join(directory, `${process.pid}.json`), JSON.stringify({ argv: process.argv.slice(2), role, statements }, null, 1));
});
