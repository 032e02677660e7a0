// R5: "generate" never hangs. Past the bound of issue requests in flight the server answers at
// once with 7001 and Retry-After, creates nothing for those requests, and serves again when the
// load has passed.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { movableClock, sampleInvoice, validUscc } from '../support/http.js';
import { buildApp } from '../../src/http/app.js';
import { addMerchant } from '../../src/app/merchants.js';
import { grantTestNumbers } from '../support/numbers.js';
import { createApiKey } from '../../src/app/api-keys.js';
import { argon2Hasher } from '../../src/security/passwords.js';

for (const kind of storesUnderTest) {
  describe(`overload on ${kind.name}`, () => {
    let opened: OpenedStore;
    let app: FastifyInstance;
    let key: string;
    let merchantId: string;

    beforeEach(async () => {
      opened = await kind.open();
      const ports = { store: opened.store, clock: movableClock(), passwords: argon2Hasher({ memoryCost: 1024, timeCost: 1 }) };
      app = await buildApp(ports, { maxIssuesInFlight: 2, logger: false });
      merchantId = (await addMerchant(ports, { name: '销售方有限公司', taxId: validUscc(7), regionCode: '31' })).id;
      await grantTestNumbers(ports, merchantId);
      key = (await createApiKey(ports, { merchantId, role: 'clerk', label: 'pos' })).key;
    });
    afterEach(async () => {
      await app.close();
      await opened.cleanup();
    });

    const issue = (idempotencyKey: string) =>
      app.inject({ method: 'POST', url: '/api/v1/invoices', headers: { authorization: `Bearer ${key}`, 'idempotency-key': idempotencyKey }, payload: sampleInvoice() });

    it('answers the requests beyond the bound at once with 7001 and Retry-After, and makes no invoice for them', async () => {
      const keys = Array.from({ length: 12 }, () => randomUUID());
      const answers = await Promise.all(keys.map(issue));
      const accepted = answers.filter((a) => a.statusCode === 201);
      const busy = answers.filter((a) => a.statusCode !== 201);
      expect(accepted.length).toBeGreaterThanOrEqual(2);
      expect(busy.length).toBeGreaterThan(0);
      for (const answer of busy) {
        expect(answer.statusCode).toBe(503);
        expect(answer.json().error.code).toBe(7001);
        expect(answer.headers['retry-after']).toBe('1');
      }
      expect(await opened.store.read.invoices.count(merchantId)).toBe(accepted.length);

      // A refused request retried later with the same key is issued, once.
      const refusedKey = keys[answers.findIndex((a) => a.statusCode === 503)]!;
      const retried = await issue(refusedKey);
      expect(retried.statusCode).toBe(201);
      expect((await issue(refusedKey)).json().number).toBe(retried.json().number);
      expect(await opened.store.read.invoices.count(merchantId)).toBe(accepted.length + 1);
    });
  });
}
