// On PostgreSQL the hot statements are prepared by name, once per connection. Behind a pooler that
// cannot keep named statements (FAPIAO_PG_NAMED_STATEMENTS=off) everything works the same with
// unnamed ones.
import { afterEach, describe, expect, it } from 'vitest';
import { body as json, sampleInvoice, startApi, type Api } from '../support/http.js';
import { postgres, type OpenedStore } from '../support/stores.js';

const url = process.env.TEST_DATABASE_URL;

describe.skipIf(!url)('named statements on PostgreSQL', () => {
  let opened: OpenedStore | undefined;
  let api: Api | undefined;
  afterEach(async () => {
    await api?.close();
    await opened?.cleanup();
  });

  /** Issues two invoices, reads one back, lists and voids: the statements of the counter. */
  const lifecycle = async (namedStatements: boolean) => {
    opened = await postgres(url!, { namedStatements }).open();
    api = await startApi(opened.store);
    const issued = [];
    for (let i = 0; i < 2; i++) {
      const response = await api.issue(api.a.keys.clerk, sampleInvoice());
      expect(response.statusCode, response.body).toBe(201);
      issued.push(json(response));
    }
    const read = json(await api.get(api.a.keys.clerk, `/api/v1/invoices/${issued[1].number}`));
    expect(read).toMatchObject({ number: issued[1].number, digest: issued[1].digest, status: 'issued' });
    expect(json(await api.get(api.a.keys.clerk, '/api/v1/invoices')).items.map((i: { number: string }) => i.number)).toEqual([issued[1].number, issued[0].number]);
    const voided = await api.inject({ method: 'POST', url: `/api/v1/invoices/${issued[0].number}/void`, headers: { authorization: `Bearer ${api.a.keys.owner}` }, payload: { reason: '开错了' } });
    expect(json(voided).status).toBe('voided');
  };

  it('works the same without them (FAPIAO_PG_NAMED_STATEMENTS=off)', async () => {
    await lifecycle(false);
  });

  it('works with them, the default', async () => {
    await lifecycle(true);
  });
});
