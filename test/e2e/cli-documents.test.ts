// `fapiao pdf`, `fapiao export-invoice`, `fapiao verify` (offline, against the public keys) and
// `fapiao keys list|rotate`, run as real processes against a real data directory.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/database.js';
import { systemClock } from '../../src/domain/time.js';
import { grantTestNumbers } from '../support/numbers.js';

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), 'fapiao-cli-docs-'));

async function fapiao(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['bin/fapiao.mjs', ...args], { env: { ...process.env, FAPIAO_DATA_DIR: dataDir, FAPIAO_PUBLIC_URL: 'https://fapiao.test' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('document commands', () => {
  let merchantId: string;
  let number: string;
  const pdf = join(dataDir, 'invoice.pdf');
  const exported = join(dataDir, 'invoice.json');
  const keysFile = join(dataDir, 'keys.json');

  beforeAll(async () => {
    await fapiao('migrate');
    merchantId = JSON.parse((await fapiao('merchant', 'add', '--name', '销售方有限公司', '--tax-id', '91350100M000100Y43', '--region', '44', '--json')).stdout).id;
    const body = join(dataDir, 'body.json');
    writeFileSync(body, JSON.stringify({
      kind: 'normal', buyer: { name: '购买方有限公司', tax_id: '91350100M000100Y43' },
      lines: [{ name: '*信息技术服务*软件开发', tax_code: '3040201000000000000', unit: '项', quantity: '2', unit_price: '500.00', tax_rate: '0.06' }],
    }));
    let issued = await fapiao('issue', '--file', body, '--merchant', merchantId, '--json');
    if (issued.code !== 0) {
      // No number block yet (no tax service in this test): enter one as a tax office would.
      const store = await openStore({ dataDir });
      await grantTestNumbers({ store, clock: systemClock }, merchantId);
      await store.close();
      issued = await fapiao('issue', '--file', body, '--merchant', merchantId, '--json');
    }
    expect(issued.code, issued.stderr).toBe(0);
    number = JSON.parse(issued.stdout).number;
  }, 60_000);
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps the private key readable by its owner only', () => {
    const id = readFileSync(join(dataDir, 'keys', 'current'), 'utf8').trim();
    expect(statSync(join(dataDir, 'keys', `${id}.pem`)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'keys')).mode & 0o777).toBe(0o700);
  });

  it('writes the PDF and verifies it offline against the public keys', async () => {
    const written = await fapiao('pdf', number, '--merchant', merchantId, '--out', pdf, '--json');
    expect(written.code, written.stderr).toBe(0);
    expect(readFileSync(pdf).subarray(0, 5).toString()).toBe('%PDF-');
    const keys = await fapiao('keys', 'list', '--json');
    writeFileSync(keysFile, JSON.stringify({ keys: JSON.parse(keys.stdout).keys }));
    const verified = await fapiao('verify', pdf, '--keys', keysFile, '--json');
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ valid: true, number, total_with_tax: '1060.00' });
  }, 30_000);

  it('refuses an altered invoice file and one signed by another key', async () => {
    expect((await fapiao('export-invoice', number, '--merchant', merchantId, '--out', exported)).code).toBe(0);
    const file = JSON.parse(readFileSync(exported, 'utf8'));
    file.invoice.totalWithTax = '10600';
    const altered = join(dataDir, 'altered.json');
    writeFileSync(altered, JSON.stringify(file));
    const refused = await fapiao('verify', altered, '--keys', keysFile, '--json');
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout).error.code).toBe(6004);

    // A forger's own key: the signature is valid for some key, but not one of the platform's.
    const { generateKeyPairSync, sign } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('ed25519');
    const genuine = JSON.parse(readFileSync(exported, 'utf8'));
    genuine.signature.value = sign(null, Buffer.from(`fapiao-invoice-signature/1\n${genuine.digest}`), privateKey).toString('base64');
    const forged = join(dataDir, 'forged.json');
    writeFileSync(forged, JSON.stringify(genuine));
    const caught = await fapiao('verify', forged, '--keys', keysFile, '--json');
    expect(caught.code).toBe(1);
    expect(JSON.parse(caught.stdout).error.code).toBe(6004);

    const notAnInvoice = await fapiao('verify', keysFile, '--json');
    expect(JSON.parse(notAnInvoice.stdout).error.code).toBe(6003);
  }, 30_000);

  it('rotates the key and still verifies invoices signed with the old one', async () => {
    const before = JSON.parse((await fapiao('keys', 'list', '--json')).stdout);
    const rotated = JSON.parse((await fapiao('keys', 'rotate', '--json')).stdout);
    expect(rotated.id).not.toBe(before.current);
    const after = JSON.parse((await fapiao('keys', 'list', '--json')).stdout);
    expect(after.current).toBe(rotated.id);
    expect(after.keys.find((k: { id: string }) => k.id === before.current).retired_at).not.toBeNull();
    const verified = await fapiao('verify', pdf, '--json'); // keys from the local database
    expect(verified.code, verified.stderr).toBe(0);
  }, 30_000);
});
