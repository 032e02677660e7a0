// Alerts are raised inside the caller's transaction, listed newest first for the caller's
// merchant only, and acknowledged once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raiseAlert } from '../../src/app/alerts.js';
import { shanghaiTimestamp } from '../../src/domain/time.js';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { body, startApi, type Api } from '../support/http.js';

for (const s of storesUnderTest) {
  describe(`alerts on ${s.name}`, () => {
    let opened: OpenedStore;
    let api: Api;
    beforeAll(async () => {
      opened = await s.open();
      api = await startApi(opened.store);
    });
    afterAll(async () => {
      await api.close();
      await opened.cleanup();
    });

    it('lists only the caller merchant\'s alerts, newest first, and pages on', async () => {
      const at = shanghaiTimestamp(api.clock.now());
      for (let i = 1; i <= 3; i++) await opened.store.write((tx) => raiseAlert(tx, { merchantId: api.a.id, kind: 'test.kind', severity: 'warning', subject: `A${i}`, detail: { i }, at }));
      await opened.store.write((tx) => raiseAlert(tx, { merchantId: api.b.id, kind: 'test.kind', severity: 'critical', subject: 'B1', at }));

      const first = body(await api.get(api.a.keys.clerk, '/api/v1/alerts', { limit: 2 }));
      expect(first.items.map((a: any) => a.subject)).toEqual(['A3', 'A2']);
      expect(first.items[0]).toMatchObject({ kind: 'test.kind', severity: 'warning', detail: { i: 3 }, acknowledged_at: null });
      const second = body(await api.get(api.a.keys.clerk, '/api/v1/alerts', { limit: 2, cursor: first.next_cursor }));
      expect(second.items.map((a: any) => a.subject)).toEqual(['A1']);
      expect(second.next_cursor).toBeNull();
      expect(body(await api.get(api.b.keys.clerk, '/api/v1/alerts')).items.map((a: any) => a.subject)).toEqual(['B1']);
    });

    it('is rolled back with the transaction that raised it', async () => {
      await expect(opened.store.write(async (tx) => {
        await raiseAlert(tx, { merchantId: api.a.id, kind: 'rolled.back', severity: 'info', subject: 'x', at: shanghaiTimestamp(api.clock.now()) });
        throw new Error('the work failed');
      })).rejects.toThrow('the work failed');
      expect(body(await api.get(api.a.keys.owner, '/api/v1/alerts', { kind: 'rolled.back' })).items).toEqual([]);
    });

    it('is acknowledged once, by a person on duty, and never across merchants', async () => {
      const id = await opened.store.write((tx) => raiseAlert(tx, { merchantId: api.a.id, kind: 'ack.me', severity: 'critical', subject: 'y', at: shanghaiTimestamp(api.clock.now()) }));
      const ack = (key: string) => api.inject({ method: 'POST', url: `/api/v1/alerts/${id}/acknowledge`, headers: { authorization: `Bearer ${key}` } });
      expect((await ack(api.a.keys.clerk)).statusCode).toBe(403);
      const elsewhere = await ack(api.b.keys.owner); // another merchant's alert is no alert of this one
      expect(elsewhere.statusCode).toBe(404);
      expect(body(elsewhere).error).toMatchObject({ code: 3010, message_en: `No such alert: ${id}` });
      expect((await ack(api.a.keys.operator)).statusCode).toBe(204);
      const listed = body(await api.get(api.a.keys.owner, '/api/v1/alerts', { kind: 'ack.me' })).items[0];
      expect(listed.acknowledged_by).toBe('apikey:a-operator');
      expect((await ack(api.a.keys.operator)).statusCode).toBe(204); // again: no change, still acknowledged by the first
      expect(body(await api.get(api.a.keys.owner, '/api/v1/alerts', { kind: 'ack.me' })).items[0].acknowledged_at).toBe(listed.acknowledged_at);
      expect(body(await api.get(api.a.keys.owner, '/api/v1/alerts', { kind: 'ack.me', unacknowledged: 'true' })).items).toEqual([]);
    });

    it('answers an alert id that was never raised with 3010 (404), not 1000 \'no such endpoint\'', async () => {
      const response = await api.inject({ method: 'POST', url: '/api/v1/alerts/987654321/acknowledge', headers: { authorization: `Bearer ${api.a.keys.operator}` } });
      expect(response.statusCode).toBe(404);
      expect(body(response).error).toMatchObject({ code: 3010, message: '预警不存在：987654321', message_en: 'No such alert: 987654321' });
      expect(body(response).error.remedy_en).toContain('GET /api/v1/alerts');
    });
  });
}
