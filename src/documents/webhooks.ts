// Signed webhooks to the merchant's own systems (R11). Every request carries
//   Fapiao-Delivery-Id: the delivery's id, the same on every retry and on a manual redelivery,
//                       so a receiver stores it and drops what it has already seen;
//   Fapiao-Event:       e.g. invoice.issued;
//   Fapiao-Signature:   t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the endpoint's secret>.
// A receiver recomputes v1 over the raw body and refuses a t more than 5 minutes away from its
// clock, which stops replays (the scheme of Stripe and Svix). The body is fixed when the delivery
// is made, so retries send the same bytes; only t and v1 change.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { bilingual, type Bilingual } from '../domain/faults.js';

export const SIGNATURE_HEADER = 'fapiao-signature';
export const DELIVERY_ID_HEADER = 'fapiao-delivery-id';
export const EVENT_HEADER = 'fapiao-event';
export const SIGNATURE_TOLERANCE_SECONDS = 300;
const TIMEOUT_MS = 10_000;
const USER_AGENT = 'Fapiao-Webhooks/1';

export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

export function webhookSignature(secret: string, timestampSeconds: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
}

export function signatureHeader(secret: string, body: string, at: Date): string {
  const t = Math.floor(at.getTime() / 1000);
  return `t=${t},v1=${webhookSignature(secret, t, body)}`;
}

/** What a receiver does (exported for receivers written in TypeScript, and for the tests). */
export function verifyWebhookSignature(secret: string, header: string | undefined, body: string, now: Date, toleranceSeconds = SIGNATURE_TOLERANCE_SECONDS): boolean {
  if (!header) return false;
  const parts = new Map(header.split(',').map((part) => part.trim().split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const given = parts.get('v1');
  if (!Number.isInteger(t) || !given || !/^[0-9a-f]{64}$/.test(given)) return false;
  if (Math.abs(now.getTime() / 1000 - t) > toleranceSeconds) return false;
  return timingSafeEqual(Buffer.from(webhookSignature(secret, t, body), 'hex'), Buffer.from(given, 'hex'));
}

export interface WebhookRequest {
  url: string;
  secret: string;
  deliveryId: string;
  event: string;
  body: string;
}

export interface AttemptResult {
  ok: boolean;
  statusCode: number | null;
  durationMs: number;
  /** Why it failed, short and free of secrets; null when it worked. */
  error: string | null;
}

/** One attempt: a 2xx answer within 10 s is delivered; anything else is a failure to retry. */
export async function postWebhook(request: WebhookRequest, at: Date, timeoutMs = TIMEOUT_MS): Promise<AttemptResult> {
  const started = performance.now();
  const duration = () => Math.round(performance.now() - started);
  try {
    const response = await fetch(request.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'user-agent': USER_AGENT,
        [DELIVERY_ID_HEADER]: request.deliveryId,
        [EVENT_HEADER]: request.event,
        [SIGNATURE_HEADER]: signatureHeader(request.secret, request.body, at),
      },
      body: request.body,
      // A redirect is not a delivery, and following one could carry the body somewhere unintended.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Read a little of the answer for the log, never all of it.
    const reply = (await response.text().catch(() => '')).slice(0, 200);
    if (response.status >= 200 && response.status < 300) return { ok: true, statusCode: response.status, durationMs: duration(), error: null };
    return { ok: false, statusCode: response.status, durationMs: duration(), error: `HTTP ${response.status}${reply ? `: ${reply}` : ''}` };
  } catch (error) {
    const cause = (error as { cause?: { code?: string; errors?: Array<{ code?: string }> } }).cause;
    const code = cause?.code ?? cause?.errors?.[0]?.code;
    const name = (error as Error).name;
    const reason = name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : code ? `cannot connect (${code})` : (error as Error).message;
    return { ok: false, statusCode: null, durationMs: duration(), error: reason };
  }
}

/** The URL rules of an endpoint (1030): absolute http(s), no credentials in it, bounded length. */
export function webhookUrlProblem(text: string): Bilingual | undefined {
  if (text.length > 2_000) return bilingual('超过 2,000 个字符', 'longer than 2,000 characters');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return bilingual('不是完整的绝对地址（应以 http:// 或 https:// 开头）', 'not an absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return bilingual('只允许 http:// 和 https:// 地址', 'only http:// and https:// are allowed');
  if (url.username || url.password) return bilingual('地址中不要包含用户名或密码，平台以签名证明身份', 'put no user name or password in the URL; the signature authenticates the platform');
  if (url.hash) return bilingual('地址中的片段（#…）不会被发送，请删除', 'a URL fragment (#…) is never sent; remove it');
  // Cloud metadata services answer on link-local addresses; a webhook must never reach them.
  // (LAN addresses stay allowed: a merchant's ERP often lives on its own network.)
  if (/^169\.254\.|^\[fe[89ab][0-9a-f]:/i.test(url.hostname) || url.hostname === 'metadata.google.internal') return bilingual('不允许链路本地地址和云元数据服务地址', 'link-local and cloud metadata addresses are not allowed');
  return undefined;
}
