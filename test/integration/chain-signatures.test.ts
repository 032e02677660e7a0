// R24 beyond the hash chain: the hashes are public algorithms, so someone with database access
// could alter an invoice and re-hash the chain from there to its head. Only the platform's
// signature needs a private key: `chain verify` checks it and names the invoice. A removed
// signature and a row inserted behind the application's back are found too.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { grantTestNumbers } from '../support/numbers.js';
import { addMerchant } from '../../src/app/merchants.js';
import { issueInvoice } from '../../src/app/issue-invoice.js';
import { openSigner } from '../../src/app/signing-keys.js';
import { verifyChains } from '../../src/app/verify-chain.js';
import { chainLink, contentDigest } from '../../src/domain/invoice.js';
import { invoiceChainScope } from '../../src/domain/audit-chain.js';
import { systemClock } from '../../src/domain/time.js';
import type { Ports } from '../../src/app/ports.js';
import type { InvoiceRequest } from '../../src/domain/draft.js';

const request = (i: number): InvoiceRequest => ({
  kind: 'normal', prices_include_tax: false, remarks: `#${i}`,
  buyer: { name: '购买方有限公司', tax_id: '91350100M000100Y43', address: '', phone: '', bank: '', account: '', email: '' },
  lines: [{ name: '*信息技术服务*软件开发', tax_code: '3040201000000000000', spec: '', unit: '项', quantity: '1', unit_price: `${100 + i}.00`, tax_rate: '0.06' }],
});

for (const kind of storesUnderTest) {
  describe(`signed hash chains on ${kind.name}`, () => {
    let opened: OpenedStore;
    let ports: Ports;
    let merchantId: string;
    let numbers: string[];
    const breaksAt = async () => (await verifyChains(ports, [merchantId])).flatMap((r) => r.breaks.map((b) => `${b.chain}:${b.at}`));
    const sqlText = (text: string) => `'${text.replaceAll("'", "''")}'`;

    beforeEach(async () => {
      opened = await kind.open();
      ports = { store: opened.store, clock: systemClock, signer: await openSigner(opened.store, systemClock, opened.dataDir) };
      merchantId = (await addMerchant(ports, { name: '销售方有限公司', taxId: '91350100M000100Y43', regionCode: '35' })).id;
      await grantTestNumbers(ports, merchantId);
      numbers = [];
      for (let i = 0; i < 4; i++) numbers.push((await issueInvoice(ports, { merchantId, role: 'clerk', actor: 'clerk1' }, request(i))).invoice.number);
    });
    afterEach(() => opened.cleanup());

    it('verifies untouched signed chains', async () => {
      expect(await breaksAt()).toEqual([]);
    });

    it('names an invoice altered and re-hashed all the way to the chain head', async () => {
      const chain = await opened.store.read.invoices.chainPage(merchantId, 0, 100);
      let prevHash = chain[0]!.prevHash;
      for (const [i, invoice] of chain.entries()) {
        const content = i === 1 ? { ...invoice, buyer: { ...invoice.buyer, name: '冒名顶替有限公司' } } : invoice;
        const digest = contentDigest(content);
        const chainHash = chainLink(prevHash, digest);
        await opened.exec(`update invoice_records set buyer_name = ${sqlText(content.buyer.name)}, digest = '${digest}', prev_hash = '${prevHash}', chain_hash = '${chainHash}' where merchant_id = '${merchantId}' and number = '${invoice.number}'`);
        prevHash = chainHash;
      }
      await opened.exec(`update chain_heads set hash = '${prevHash}' where scope = '${invoiceChainScope(merchantId)}'`);
      expect(await breaksAt()).toEqual([`invoices:${numbers[1]}`]);
    });

    it('names an invoice whose signature was removed', async () => {
      await opened.exec(`update invoice_records set signature = null, signing_key_id = null where merchant_id = '${merchantId}' and number = '${numbers[2]}'`);
      expect(await breaksAt()).toEqual([`invoices:${numbers[2]}`]);
    });

    it('finds a row inserted behind the application\'s back', async () => {
      const [last] = await opened.store.read.invoices.chainPage(merchantId, 3, 1);
      await opened.exec(
        `insert into invoice_records (merchant_id, number, kind, issued_at, issue_date, buyer_name, buyer_tax_id, total_amount, total_tax, total_with_tax, content, digest, prev_hash, chain_hash, chain_index, signature, signing_key_id)
         select merchant_id, '26359000000000000001', kind, issued_at, issue_date, buyer_name, buyer_tax_id, total_amount, total_tax, total_with_tax, content, digest, prev_hash, chain_hash, 5, signature, signing_key_id
         from invoice_records where merchant_id = '${merchantId}' and number = '${last!.number}'`,
      );
      await opened.exec(`insert into invoice_states (merchant_id, number, status) values ('${merchantId}', '26359000000000000001', 'issued')`);
      expect(await breaksAt()).toContain('invoices:26359000000000000001');
    });
  });
}
