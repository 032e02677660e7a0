// Where the client gets each merchant's signing key. Fapiao keeps the keys in its own database
// (upstream_credentials, one per taxpayer and tax service), so every instance signs with the same
// key. A taxpayer without one is enrolled: the sandbox enrols anyone (open enrolment); a real tax
// service that refuses makes it 4008 until an operator records a key.
import { bilingual, Fault, faults, withOriginal } from '../domain/faults.js';
import { shanghaiTimestamp, type Clock } from '../domain/time.js';
import type { Store } from '../app/ports.js';
import type { SigningKey } from './signing.js';
import { UpstreamFault } from './client.js';

export interface CredentialSource {
  get(sellerTaxId: string): Promise<SigningKey>;
  /** The tax service no longer knows this key: forget it so the next call enrols again. */
  forget(sellerTaxId: string, keyId: string): void;
}

/** Fixed keys (tests, or an operator's configuration). */
export function staticCredentials(keys: Record<string, SigningKey>): CredentialSource {
  return {
    async get(seller) {
      const key = keys[seller];
      if (!key) throw new Fault(faults.UPSTREAM_NOT_ENROLLED, { seller, reason: bilingual('未配置签名密钥', 'no key configured') });
      return key;
    },
    forget() {},
  };
}

/**
 * Enrols a taxpayer at the tax service (POST /v1/enroll); open in the sandbox only. A tax service
 * that cannot be reached, or fails, is an outage like any other (the client's circuit counts it);
 * the call that needed the key was not sent.
 */
export async function enroll(baseUrl: string, sellerTaxId: string, timeoutMs = 10_000): Promise<SigningKey> {
  let response: Response;
  try {
    response = await fetch(`${baseUrl.replace(/\/+$/, '')}/v1/enroll`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ seller_tax_id: sellerTaxId }), signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new UpstreamFault(faults.UPSTREAM_UNREACHABLE, { reason: withOriginal('注册签名密钥时无法连接', (error as Error).message.slice(0, 200), 'enrolment'), sent: 'false' }, false);
  }
  if (response.status >= 500) throw new UpstreamFault(faults.UPSTREAM_SERVER_ERROR, { status: String(response.status) }, false);
  const answer = (await response.json().catch(() => ({}))) as { key_id?: unknown; secret?: unknown; error?: { code?: string; message?: string } };
  if (response.status !== 201 || typeof answer.key_id !== 'string' || typeof answer.secret !== 'string') {
    throw new Fault(faults.UPSTREAM_NOT_ENROLLED, { seller: sellerTaxId, reason: withOriginal('税务服务拒绝注册', answer.error ? `${answer.error.code}: ${answer.error.message}` : `HTTP ${response.status}`) });
  }
  return { keyId: answer.key_id, secret: answer.secret };
}

/** Keys from the database, enrolling (and storing the key) on first use. Cached per process. */
export function storedCredentials(store: Store, upstreamUrl: string, clock: Clock, options: { timeoutMs?: number } = {}): CredentialSource {
  const cache = new Map<string, Promise<SigningKey>>();
  const load = async (seller: string): Promise<SigningKey> => {
    const stored = await store.read.upstreamCredentials.get(seller, upstreamUrl);
    if (stored) return { keyId: stored.keyId, secret: stored.secret };
    const key = await enroll(upstreamUrl, seller, options.timeoutMs);
    // Two instances may enrol at once; both keys are valid, and everyone uses the one stored first.
    const kept = await store.write((tx) => tx.upstreamCredentials.insertIfAbsent({ sellerTaxId: seller, upstreamUrl, ...key, createdAt: shanghaiTimestamp(clock.now()) }));
    return { keyId: kept.keyId, secret: kept.secret };
  };
  return {
    get(seller) {
      let key = cache.get(seller);
      if (!key) {
        key = load(seller);
        cache.set(seller, key);
        key.catch(() => cache.delete(seller));
      }
      return key;
    },
    forget(seller, keyId) {
      cache.delete(seller);
      void store.write(async (tx) => {
        const stored = await tx.upstreamCredentials.get(seller, upstreamUrl);
        if (stored?.keyId === keyId) await tx.upstreamCredentials.remove(seller, upstreamUrl);
      }).catch(() => {});
    },
  };
}
