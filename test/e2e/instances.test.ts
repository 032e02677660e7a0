// R4/R60: several server processes on one database — three `fapiao serve` instances issuing for
// the same merchant at once, on SQLite (one file) and on PostgreSQL. Numbers stay unique and
// gap-free, the chain intact, and one Idempotency-Key sent to two instances at the same moment
// makes one invoice.
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runCli, startServer, tempDataDir, threeLineInvoice, type ServerProcess } from '../support/server-process.js';

interface Backend {
  name: string;
  /** Environment that points the CLI and servers at this backend, and a clean-up. */
  prepare(): Promise<{ env: NodeJS.ProcessEnv; drop(): Promise<void> }>;
}

const backends: Backend[] = [{ name: 'sqlite', prepare: async () => ({ env: {}, drop: async () => {} }) }];
const testDatabaseUrl = process.env.TEST_DATABASE_URL;
if (testDatabaseUrl) {
  backends.push({
    name: 'postgres',
    async prepare() {
      const database = `fapiao_instances_${randomBytes(4).toString('hex')}`;
      const admin = async (statement: string) => {
        const client = new pg.Client({ connectionString: testDatabaseUrl });
        await client.connect();
        await client.query(statement).finally(() => client.end());
      };
      await admin(`create database ${database}`);
      const url = new URL(testDatabaseUrl);
      url.pathname = `/${database}`;
      return { env: { DATABASE_URL: url.toString() }, drop: () => admin(`drop database ${database} with (force)`) };
    },
  });
}

for (const backend of backends) {
  describe(`three instances on ${backend.name}`, () => {
    const dir = tempDataDir('fapiao-instances-');
    const servers: ServerProcess[] = [];
    let env: NodeJS.ProcessEnv;
    let drop: () => Promise<void>;
    let merchantId: string;
    let apiKey: string;

    const cli = async (...args: string[]) => {
      const result = await runCli(dir.dataDir, args, env);
      if (result.code !== 0) throw new Error(`fapiao ${args.join(' ')}: ${result.stderr}${result.stdout}`);
      return result.stdout;
    };

    beforeAll(async () => {
      ({ env, drop } = await backend.prepare());
      await cli('migrate');
      merchantId = JSON.parse(await cli('merchant', 'add', '--name', '多实例测试有限公司', '--tax-id', '91350100M000100Y43', '--region', '35', '--json')).id;
      apiKey = JSON.parse(await cli('apikey', 'create', '--merchant', merchantId, '--role', 'clerk', '--json')).key;
      for (let i = 0; i < 3; i++) {
        servers.push(await startServer({ dataDir: dir.dataDir, port: await freePort(), env: { ...env, FAPIAO_WORKERS: '1', FAPIAO_RATE_LIMIT_PER_KEY: '1000000' } }));
      }
    }, 90_000);

    afterAll(async () => {
      await Promise.all(servers.map((s) => s.kill('SIGTERM')));
      await drop();
      dir.remove();
    });

    const issue = async (server: ServerProcess, key: string, body: unknown) => {
      const response = await fetch(`${server.baseUrl}/api/v1/invoices`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as { number: string } };
    };

    it('issues concurrently through all three with unique, gap-free numbers, one invoice per key, and an intact chain', async () => {
      const clients = 24;
      const perClient = 10;
      const plain = await Promise.all(
        Array.from({ length: clients }, async (_, c) => {
          const answers = [];
          for (let i = 0; i < perClient; i++) answers.push(await issue(servers[(c + i) % 3]!, randomUUID(), threeLineInvoice(`client ${c} #${i}`)));
          return answers;
        }),
      );
      // The same key and body at two instances at the same moment.
      const raced = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const key = randomUUID();
          const body = threeLineInvoice(`raced ${i}`);
          return Promise.all([issue(servers[i % 3]!, key, body), issue(servers[(i + 1) % 3]!, key, body)]);
        }),
      );

      const all = [...plain.flat(), ...raced.flat()];
      expect(all.every((a) => a.status === 201), JSON.stringify(all.find((a) => a.status !== 201))).toBe(true);
      for (const [first, second] of raced) expect(second.body.number).toBe(first.body.number);

      const numbers = [...new Set(all.map((a) => a.body.number))].sort();
      expect(numbers).toHaveLength(clients * perClient + raced.length);
      const sequences = numbers.map((n) => Number(n.slice(5)));
      expect(sequences).toEqual(Array.from({ length: numbers.length }, (_, i) => i + 1));

      const stored = JSON.parse(await cli('query', '--merchant', merchantId, '--limit', '200', '--json'));
      expect(stored.items.length).toBe(200);
      const verified = JSON.parse(await cli('chain', 'verify', '--json'));
      expect(verified.ok).toBe(true);
      expect(verified.merchants.find((m: { merchantId: string }) => m.merchantId === merchantId).invoices).toBe(numbers.length);
    }, 120_000);
  });
}
