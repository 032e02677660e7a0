// The `fapiao` command as an operator uses it, run as a real process against a real data dir.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gbkBytes } from '../support/gbk.js';

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), 'fapiao-cli-'));

async function fapiao(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['bin/fapiao.mjs', ...args], { env: { ...process.env, FAPIAO_DATA_DIR: dataDir } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const invoice = {
  kind: 'normal',
  buyer: { name: '购买方有限公司', tax_id: '91350100M000100Y43' },
  lines: [{ name: '*信息技术服务*软件开发', tax_code: '3040201000000000000', unit: '项', quantity: '2', unit_price: '500.00', tax_rate: '0.06' }],
};

describe('the fapiao command', () => {
  let merchantId: string;
  const file = join(dataDir, 'invoice.json');

  beforeAll(async () => {
    expect((await fapiao('migrate')).stdout).toContain('001-core');
    const added = await fapiao('merchant', 'add', '--name', '销售方有限公司', '--tax-id', '91350100M000100Y43', '--region', '44', '--json');
    merchantId = JSON.parse(added.stdout).id;
    writeFileSync(file, JSON.stringify(invoice));
  }, 60_000);
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('creates an API key and prints it once as JSON', async () => {
    const created = await fapiao('apikey', 'create', '--merchant', merchantId, '--role', 'clerk', '--json');
    expect(JSON.parse(created.stdout).key).toMatch(/^fpk_[0-9a-f]{16}_[\w-]{43}$/);
  });

  it('issues from a file and finds the invoice again by number', async () => {
    const issued = JSON.parse((await fapiao('issue', '--file', file, '--merchant', merchantId, '--json')).stdout);
    expect(issued).toMatchObject({ number: '26441000000000000001', total_with_tax: '1060.00', total_in_words: '壹仟零陆拾圆整' });
    const found = JSON.parse((await fapiao('query', '--merchant', merchantId, '--number', issued.number, '--json')).stdout);
    expect(found.digest).toBe(issued.digest);
  });

  it('sets the operator\'s own monthly credit limit, shows it beside the tax service\'s grant with which binds, and lifts it with none', async () => {
    const set = await fapiao('merchant', 'limits', '--merchant', merchantId, '--monthly-credit', '0.01');
    expect(set.stdout).toBe(`limits of ${merchantId}: daily none, monthly credit 0.01 yuan (tax service none, operator 0.01 yuan; the operator's limit binds)\n`);
    const refused = await fapiao('issue', '--file', file, '--merchant', merchantId, '--json');
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout).error).toMatchObject({ code: 3004 });
    expect(JSON.parse(refused.stdout).error.message_en).toContain("the operator's limit of 0.01 yuan binds (tax service's grant: none)");
    expect((await fapiao('status', '--merchant', merchantId)).stdout).toMatch(/monthly credit 0\.01 yuan \(tax service none, operator 0\.01 yuan; the operator's limit binds\); \d{4}-\d{2}: [\d.]+ yuan used, 0\.0[01] yuan left/);

    const lifted = JSON.parse((await fapiao('merchant', 'limits', '--merchant', merchantId, '--monthly-credit', 'none', '--json')).stdout);
    expect(lifted).toMatchObject({ monthly_credit: null, credit_line: { limit: null, binding: null, tax_service: null, operator: null } });
  });

  it('refuses a bad file with the same coded error as the API, and exit code 2', async () => {
    writeFileSync(join(dataDir, 'bad.json'), JSON.stringify({ ...invoice, buyer: { name: '买方', tax_id: '91350100M000100Y44' } }));
    const refused = await fapiao('issue', '--file', join(dataDir, 'bad.json'), '--merchant', merchantId, '--json');
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout).error).toMatchObject({ code: 1001, details: [{ field: 'buyer.tax_id' }] });
  });

  it('refuses a file saved as GBK with 1024 naming the file and saying to save it as UTF-8, and issues nothing', async () => {
    const gbk = join(dataDir, 'gbk.json');
    writeFileSync(gbk, gbkBytes(JSON.stringify(invoice)));
    const before = JSON.parse((await fapiao('query', '--merchant', merchantId, '--json')).stdout).items.length;
    const refused = await fapiao('issue', '--file', gbk, '--merchant', merchantId, '--json');
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout).error).toMatchObject({ code: 1024, message_en: `${gbk} is not UTF-8 text`, details: [{ field: gbk }] });
    expect(JSON.parse(refused.stdout).error.remedy_en).toContain('Save the file as UTF-8');
    const told = await fapiao('issue', '--file', gbk, '--merchant', merchantId);
    expect(told.stderr).toContain(`错误 1024：${gbk} 不是 UTF-8 编码的文本`);
    expect(JSON.parse((await fapiao('query', '--merchant', merchantId, '--json')).stdout).items.length).toBe(before);
  });

  it('explains a fault code in both languages', async () => {
    const explained = await fapiao('errors', '1001');
    expect(explained.stdout).toContain('购买方纳税人识别号无效');
    expect(explained.stdout).toContain('Buyer taxpayer ID is invalid');
    expect((await fapiao('errors', '4242')).code).toBe(2);
  });

  it.each(['99', '4242', '1e3', 'abc'])('answers `errors %s`, an unknown fault code, with 1023 rather than "no such endpoint"', async (code) => {
    const refused = await fapiao('errors', code, '--json');
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout).error).toMatchObject({ code: 1023, details: [{ field: 'code' }] });
    expect(JSON.parse(refused.stdout).error.message_en).toContain(code);
  });

  it('verifies the chains, then exits 1 naming the invoice altered behind its back', async () => {
    expect((await fapiao('chain', 'verify')).code).toBe(0);
    const db = new SQLite(join(dataDir, 'fapiao.db'));
    db.exec(`update invoice_records set total_amount = 1 where number = '26441000000000000001'`);
    db.close();
    const broken = await fapiao('chain', 'verify');
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain('BREAK');
    expect(broken.stdout).toContain('26441000000000000001');
  });
});
