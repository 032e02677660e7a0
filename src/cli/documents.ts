// `fapiao pdf`, `fapiao export-invoice`, `fapiao verify <file>` (offline signature check) and
// `fapiao keys list|rotate`.
import { readFileSync, writeFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { readConfig } from '../config.js';
import { openStore } from '../store/database.js';
import { systemClock } from '../domain/time.js';
import { bilingual, Fault, faults, originalOf, withOriginal } from '../domain/faults.js';
import { formatYuan } from '../domain/money.js';
import { keyIdOf } from '../domain/signature.js';
import type { Caller } from '../domain/access.js';
import type { Ports } from '../app/ports.js';
import type { SigningKeyRecord } from '../app/document-ports.js';
import { getInvoice } from '../app/query-invoices.js';
import { currentKeyId, listSigningKeys, rotateSigningKey } from '../app/signing-keys.js';
import { checkInvoiceFile, PublicKeys } from '../app/verify-invoice.js';
import { PdfCache } from '../documents/pdf-cache.js';
import { invoiceFile, readInvoiceFile } from '../documents/invoice-file.js';
import { printJson, reportError } from './output.js';

const json = new Option('--json', 'print JSON');
const cliCaller = (merchantId: string): Caller => ({ merchantId, role: 'owner', actor: `cli:${userInfo().username}` });

function withStore(action: (ports: Ports, options: Record<string, any>, args: string[]) => Promise<number | void>) {
  return async (...args: any[]) => {
    const command = args.at(-1) as Command;
    const options = command.optsWithGlobals();
    try {
      const store = await openStore(readConfig());
      try {
        process.exitCode = (await action({ store, clock: systemClock }, options, command.args)) ?? 0;
      } finally {
        await store.close();
      }
    } catch (error) {
      process.exitCode = reportError(error, Boolean(options.json));
    }
  };
}

export function registerDocumentCommands(program: Command): void {
  program.command('pdf').description('write the PDF of an invoice (版式文件)').argument('<number>')
    .requiredOption('--merchant <id>').option('--out <file>', 'where to write it (default fapiao-<number>.pdf)').addOption(json)
    .action(withStore(async (ports, o, [number]) => {
      const config = readConfig();
      const invoice = await getInvoice(ports, cliCaller(o.merchant), number!);
      const pdf = await new PdfCache({ publicUrl: config.publicUrl, dir: join(config.dataDir, 'pdf-cache') }).pdfFor(invoice);
      const out = o.out ?? `fapiao-${invoice.number}.pdf`;
      writeFileSync(out, pdf);
      if (o.json) printJson({ number: invoice.number, file: out, bytes: pdf.length });
      else console.log(`wrote ${out} (${pdf.length} bytes)`);
    }));

  program.command('export-invoice').description('write the signed invoice file (fapiao-invoice/1 JSON) that `fapiao verify` checks').argument('<number>')
    .requiredOption('--merchant <id>').option('--out <file>', 'default fapiao-<number>.json').addOption(json)
    .action(withStore(async (ports, o, [number]) => {
      const invoice = await getInvoice(ports, cliCaller(o.merchant), number!);
      if (!invoice.signature) throw new Fault(faults.SIGNING_KEY_UNAVAILABLE, { reason: bilingual(`发票 ${invoice.number} 开具于启用签名之前`, `invoice ${invoice.number} was issued before signing was introduced`) });
      const out = o.out ?? `fapiao-${invoice.number}.json`;
      writeFileSync(out, `${JSON.stringify(invoiceFile(invoice, invoice.signature), null, 2)}\n`);
      if (o.json) printJson({ number: invoice.number, file: out });
      else console.log(`wrote ${out}`);
    }));

  program.command('verify').description('check a signed invoice (PDF from the platform or exported JSON) offline against the public keys').argument('<file>')
    .option('--keys <file>', 'a public key (PEM) or the JSON of GET /api/v1/keys; default: the keys in the local database').addOption(json)
    .action(async (file: string, o: { keys?: string; json?: boolean }) => {
      try {
        let bytes: Buffer;
        try {
          bytes = readFileSync(file);
        } catch (error) {
          throw new Fault(faults.INVOICE_FILE_INVALID, { reason: withOriginal(`无法读取文件 ${file}`, originalOf(error), file) });
        }
        let parsed;
        try {
          parsed = readInvoiceFile(bytes);
        } catch (error) {
          throw new Fault(faults.INVOICE_FILE_INVALID, { reason: withOriginal('文件内容无法作为发票读取', (error as Error).message) });
        }
        const records = o.keys ? keysFromFile(o.keys) : await keysFromStore();
        const check = await checkInvoiceFile(parsed, PublicKeys.fromRecords(records));
        if (o.json) printJson({ valid: true, number: check.number, key_id: check.keyId, digest: check.digest, total_with_tax: formatYuan(check.totalWithTax) });
        else console.log(`签名有效 / signature valid: invoice ${check.number}, 价税合计 ${formatYuan(check.totalWithTax)}, key ${check.keyId}`);
        process.exitCode = 0;
      } catch (error) {
        const failedCheck = error instanceof Fault && (error.spec === faults.INVOICE_SIGNATURE_INVALID || error.spec === faults.SIGNING_KEY_UNKNOWN);
        const code = reportError(error, Boolean(o.json));
        process.exitCode = failedCheck ? 1 : code; // 1: the check ran and the invoice failed it
      }
    });

  const keys = program.command('keys').description('the platform signing keys (Ed25519)');
  keys.command('list').description('every public key, current and retired').addOption(json)
    .action(withStore(async (ports, o) => {
      const current = currentKeyId(readConfig().dataDir);
      const list = await listSigningKeys(ports.store);
      if (o.json) printJson({ current: current ?? null, keys: list.map((k) => ({ id: k.id, algorithm: k.algorithm, created_at: k.createdAt, retired_at: k.retiredAt, public_key_pem: k.publicKeyPem })) });
      else for (const k of list) console.log(`${k.id}  ${k.algorithm}  created ${k.createdAt}${k.retiredAt ? `  retired ${k.retiredAt}` : ''}${k.id === current ? '  (current here)' : ''}`);
    }));
  keys.command('rotate').description('make a new signing key; older public keys stay valid for the invoices they signed').addOption(json)
    .action(withStore(async (ports, o) => {
      const key = await rotateSigningKey(ports.store, ports.clock, readConfig().dataDir);
      if (o.json) printJson({ id: key.id, algorithm: key.algorithm, created_at: key.createdAt, public_key_pem: key.publicKeyPem });
      else console.log(`new signing key ${key.id}; running servers switch to it within 10 s`);
    }));
}

async function keysFromStore(): Promise<SigningKeyRecord[]> {
  const store = await openStore(readConfig());
  try {
    return await store.read.signingKeys.list();
  } finally {
    await store.close();
  }
}

/** A PEM public key, or the JSON answer of GET /api/v1/keys. */
function keysFromFile(path: string): SigningKeyRecord[] {
  try {
    const text = readFileSync(path, 'utf8');
    if (text.trimStart().startsWith('-----BEGIN')) {
      const pem = createPublicKey(text).export({ type: 'spki', format: 'pem' }).toString();
      return [{ id: keyIdOf(pem), algorithm: 'Ed25519', publicKeyPem: pem, createdAt: '', retiredAt: null }];
    }
    const answer = JSON.parse(text) as { keys: Array<{ id: string; public_key_pem: string; created_at: string; retired_at: string | null }> };
    // The id is recomputed from the key itself: a keys file cannot vouch for a key under another id.
    return answer.keys.map((k) => ({ id: keyIdOf(k.public_key_pem), algorithm: 'Ed25519', publicKeyPem: k.public_key_pem, createdAt: k.created_at, retiredAt: k.retired_at }));
  } catch (error) {
    throw new Fault(faults.INVOICE_FILE_INVALID, {
      reason: withOriginal(
        `公钥文件 ${path} 既不是 PEM 公钥，也不是 /api/v1/keys 返回的 JSON`,
        (error as Error).message,
        `keys file ${path} is neither a PEM public key nor the JSON of /api/v1/keys`,
      ),
    });
  }
}
