// Deliveries (推送, R11): an email to the buyer or a webhook to the merchant's systems. Each one
// has a stable id, which the receiver sees on every attempt (and on a manual redelivery), so it can
// drop what it already has. Attempts are retried with exponential backoff and jitter for 24 hours;
// every attempt is logged. Pure rules; the sending lives in src/documents.
import { shanghaiTimestamp } from './time.js';

export const deliveryChannels = ['webhook', 'email'] as const;
export type DeliveryChannel = (typeof deliveryChannels)[number];

export const deliveryStates = ['pending', 'delivered', 'failed'] as const;
export type DeliveryState = (typeof deliveryStates)[number];

export const webhookEvents = ['invoice.issued', 'webhook.test'] as const;
export type WebhookEvent = (typeof webhookEvents)[number];

export interface Delivery {
  id: string;
  merchantId: string;
  channel: DeliveryChannel;
  /** The webhook endpoint, for webhooks. */
  endpointId: string | null;
  /** The URL or the email address it goes to (as it was when the delivery was made). */
  recipient: string;
  event: string;
  /** What it is about: an invoice number. */
  subject: string;
  /** The exact body sent on every attempt (webhooks). */
  payload: string;
  state: DeliveryState;
  attempts: number;
  /** Start of the current retry window (creation, or the last manual redelivery). */
  windowStartedAt: string;
  nextAttemptAt: string;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
  redeliveries: number;
}

export interface DeliveryAttempt {
  id?: number;
  deliveryId: string;
  merchantId: string;
  at: string;
  outcome: 'delivered' | 'failed';
  /** HTTP status for webhooks, SMTP reply code for email, when there was an answer. */
  statusCode: number | null;
  durationMs: number;
  error: string | null;
}

export interface RetryPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
  /** Retries stop this long after the first attempt of the window. */
  giveUpAfterMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { baseDelayMs: 30_000, maxDelayMs: 2 * 3600_000, giveUpAfterMs: 24 * 3600_000 };

export class DeliveryTransitionError extends Error {}

export function delivered(delivery: Delivery, at: string): Delivery {
  if (delivery.state !== 'pending') throw new DeliveryTransitionError(`delivery ${delivery.id} is ${delivery.state}`);
  return { ...delivery, state: 'delivered', attempts: delivery.attempts + 1, deliveredAt: at, lastError: null };
}

/** A failed attempt: try again after a growing, jittered pause, or give up after the window. */
export function failedAttempt(delivery: Delivery, error: string, at: Date, policy: RetryPolicy, random: () => number = Math.random): Delivery {
  if (delivery.state !== 'pending') throw new DeliveryTransitionError(`delivery ${delivery.id} is ${delivery.state}`);
  const attempts = delivery.attempts + 1;
  const next = new Date(at.getTime() + jitteredDelay(attempts, policy, random));
  const windowEnd = Date.parse(delivery.windowStartedAt) + policy.giveUpAfterMs;
  if (next.getTime() > windowEnd) return { ...delivery, state: 'failed', attempts, lastError: error };
  return { ...delivery, attempts, lastError: error, nextAttemptAt: shanghaiTimestamp(next) };
}

/** Manual redelivery: the same delivery (same id) gets a fresh 24-hour window. */
export function redeliver(delivery: Delivery, at: string): Delivery {
  if (delivery.state === 'pending') throw new DeliveryTransitionError(`delivery ${delivery.id} is still pending`);
  return { ...delivery, state: 'pending', windowStartedAt: at, nextAttemptAt: at, deliveredAt: null, redeliveries: delivery.redeliveries + 1 };
}

/** base·2^(n−1) capped, times 0.75–1.25 so that receivers coming back are not hit all at once. */
export function jitteredDelay(attempt: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(exponential * (0.75 + random() * 0.5));
}

const EMAIL = /^[^\s@<>()[\]\\,;:"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function isEmailAddress(text: string): boolean {
  return text.length <= 254 && EMAIL.test(text);
}
