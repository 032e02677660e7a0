// Delivery retries (R11): jittered exponential backoff inside a 24-hour window, redelivery opens a
// new window under the same id.
import { describe, expect, it } from 'vitest';
import { delivered, DeliveryTransitionError, failedAttempt, isEmailAddress, jitteredDelay, redeliver, type Delivery } from '../../src/domain/delivery.js';
import { signatureHeader, verifyWebhookSignature, webhookUrlProblem } from '../../src/documents/webhooks.js';

const policy = { baseDelayMs: 30_000, maxDelayMs: 2 * 3600_000, giveUpAfterMs: 24 * 3600_000 };
const start = '2026-03-10T10:00:00.000+08:00';
const pending: Delivery = {
  id: 'dlv_1', merchantId: 'm', channel: 'webhook', endpointId: 'e', recipient: 'https://erp.example.cn/hook', event: 'invoice.issued', subject: 'n',
  payload: '{}', state: 'pending', attempts: 0, windowStartedAt: start, nextAttemptAt: start, lastError: null, createdAt: start, deliveredAt: null, redeliveries: 0,
};

describe('delivery retries', () => {
  it('doubles the pause with ±25 % jitter up to the cap', () => {
    expect(jitteredDelay(1, policy, () => 0.5)).toBe(30_000);
    expect(jitteredDelay(3, policy, () => 0.5)).toBe(120_000);
    expect(jitteredDelay(1, policy, () => 0)).toBe(22_500);
    expect(jitteredDelay(1, policy, () => 1)).toBe(37_500);
    expect(jitteredDelay(20, policy, () => 0.5)).toBe(7_200_000);
  });

  it('keeps retrying for 24 hours, then gives up; a redelivery opens a new window with the same id', () => {
    let d = pending;
    let now = Date.parse(start);
    while (d.state === 'pending') {
      d = failedAttempt(d, 'HTTP 503', new Date(now), policy, () => 0.5);
      if (d.state === 'pending') now = Date.parse(d.nextAttemptAt);
    }
    expect(d.state).toBe('failed');
    expect(now - Date.parse(start)).toBeLessThanOrEqual(24 * 3600_000);
    expect(now - Date.parse(start)).toBeGreaterThan(20 * 3600_000);
    expect(d.attempts).toBeGreaterThan(10);
    const again = redeliver(d, '2026-03-12T09:00:00.000+08:00');
    expect(again).toMatchObject({ id: 'dlv_1', state: 'pending', windowStartedAt: '2026-03-12T09:00:00.000+08:00', redeliveries: 1 });
    expect(() => redeliver(again, 'x')).toThrow(DeliveryTransitionError);
    expect(delivered(again, 'y')).toMatchObject({ state: 'delivered', deliveredAt: 'y' });
  });

  it('signs t.body and refuses anything else', () => {
    const at = new Date('2026-03-10T02:00:00Z');
    const header = signatureHeader('whsec_k', '{"a":1}', at);
    expect(header).toMatch(/^t=1773108000,v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature('whsec_k', header, '{"a":1}', at)).toBe(true);
    expect(verifyWebhookSignature('whsec_k', header, '{"a":2}', at)).toBe(false);
    expect(verifyWebhookSignature('whsec_k', header.replace('t=1773108000', 't=1773108001'), '{"a":1}', at)).toBe(false);
    expect(verifyWebhookSignature('whsec_k', 'garbage', '{"a":1}', at)).toBe(false);
    expect(verifyWebhookSignature('whsec_k', undefined, '{"a":1}', at)).toBe(false);
  });

  it('accepts only http(s) receiver URLs and plain email addresses', () => {
    expect(webhookUrlProblem('https://erp.example.cn/hook')).toBeUndefined();
    expect(webhookUrlProblem('javascript:alert(1)')?.en).toMatch(/http/);
    expect(webhookUrlProblem('/relative')?.en).toMatch(/absolute/);
    expect(webhookUrlProblem('http://169.254.169.254/latest/meta-data/')?.en).toMatch(/link-local/);
    expect(webhookUrlProblem('http://[fe80::1]/hook')?.en).toMatch(/link-local/);
    expect(webhookUrlProblem('http://192.168.1.20:8080/erp/hook')).toBeUndefined();
    expect(isEmailAddress('ap@example.cn')).toBe(true);
    for (const bad of ['ap', 'ap@', '@example.cn', 'a b@example.cn', 'ap@example', 'x@-bad.cn']) expect(isEmailAddress(bad), bad).toBe(false);
  });
});
