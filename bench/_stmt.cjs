// scratch: time every better-sqlite3 statement, dump per process on exit
const Database = require('/work/main/node_modules/better-sqlite3');
const fs = require('fs');
const db = new Database(':memory:');
const proto = Object.getPrototypeOf(db.prepare('select 1'));
const stats = new Map();
for (const m of ['run', 'all', 'get', 'iterate']) {
  const orig = proto[m];
  proto[m] = function (...args) {
    const t = process.hrtime.bigint();
    try { return orig.apply(this, args); } finally {
      const d = Number(process.hrtime.bigint() - t);
      const k = this.source.replace(/\s+/g, ' ').slice(0, 140);
      let s = stats.get(k); if (!s) stats.set(k, s = { n: 0, ns: 0 });
      s.n++; s.ns += d;
    }
  };
}
const dump = () => { if (stats.size) fs.writeFileSync(`/tmp/stmt/${process.pid}.json`, JSON.stringify({ argv: process.argv.slice(1), cluster: process.env.NODE_UNIQUE_ID ?? null, stats: [...stats] })); };
process.on('exit', dump);
process.on('SIGUSR2', dump);
