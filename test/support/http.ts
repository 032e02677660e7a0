// The HTTP API over a real store, with two merchants (A and B), an owner user each and an API key
// per role, a clock the test moves, and a few helpers. Everything goes through app.inject(): no
// ports are opened, so files run in parallel without clashing. Each call makes merchants of its
// own, so tests may share one store (and its migrations) and still never see each other's data.
import { randomInt } from 'node:crypto';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { createApiKey } from '../../src/app/api-keys.js';
import { addMerchant, type MerchantInput } from '../../src/app/merchants.js';
import { grantTestNumbers } from './numbers.js';
import type { MerchantRecord, Ports, Store } from '../../src/app/ports.js';
import { addUser } from '../../src/app/users.js';
import { roles, type Role } from '../../src/domain/access.js';
import { organisationCodeCheckCharacter, usccCheckCharacter } from '../../src/domain/taxpayer-id.js';
import type { Clock } from '../../src/domain/time.js';
import { buildApp, type HttpOptions } from '../../src/http/app.js';
import type { InvoiceSigner } from '../../src/app/document-ports.js';
import { argon2Hasher, type PasswordHasher } from '../../src/security/passwords.js';

/** Tuesday 2026-03-10, 10:00 in Shanghai. */
export const START = new Date('2026-03-10T02:00:00Z');
export const OWNER_PASSWORD = 'correct horse battery';

export interface MovableClock extends Clock {
  set(at: Date | string): void;
  advance(ms: number): void;
}

export function movableClock(start: Date = START): MovableClock {
  let current = new Date(start);
  return {
    now: () => new Date(current),
    set: (at) => {
      current = new Date(at);
    },
    advance: (ms) => {
      current = new Date(current.getTime() + ms);
    },
  };
}

/**
 * A valid 统一社会信用代码 made from a number: '91' (enterprise), a division code, an organisation
 * code with its own check character, and the USCC check character.
 */
export function validUscc(seed: number, division = '310000'): string {
  const organisation8 = String(10_000_000 + (seed % 90_000_000)).padStart(8, '0');
  const first17 = `91${division}${organisation8}${organisationCodeCheckCharacter(organisation8)}`;
  return first17 + usccCheckCharacter(first17);
}

/** The same 17 characters with a different, wrong check character. */
export function withWrongCheckCharacter(uscc: string): string {
  const right = uscc.at(-1);
  return uscc.slice(0, 17) + (right === '0' ? '1' : '0');
}

export interface LineBody {
  name: string;
  tax_code: string;
  spec?: string;
  unit?: string;
  quantity: string;
  unit_price: string;
  tax_rate: string;
}

export interface BuyerBody {
  name: string;
  tax_id?: string;
  address?: string;
  phone?: string;
  bank?: string;
  account?: string;
  email?: string;
}

export interface InvoiceBody {
  kind: 'normal' | 'special';
  prices_include_tax?: boolean;
  remarks?: string;
  buyer: BuyerBody;
  lines: LineBody[];
}

export const BUYER_TAX_ID = validUscc(4_401_234, '440300');

/**
 * A valid invoice of three lines at 6 %, 13 % and 9 %:
 *   1 × 1000.00 @ 6 %  → 1000.00 +  60.00
 *   2 ×  199.00 @ 13 % →  398.00 +  51.74
 *   1 ×   50.00 @ 9 %  →   50.00 +   4.50
 *   totals 1448.00 + 116.24 = 1564.24
 * `buyer` in the overrides is merged into the sample buyer; other fields replace the sample's.
 */
export function sampleInvoice(overrides: Partial<Omit<InvoiceBody, 'buyer'>> & { buyer?: Partial<BuyerBody> } = {}): InvoiceBody {
  const { buyer, ...rest } = overrides;
  return {
    kind: 'normal',
    prices_include_tax: false,
    remarks: '合同号 HT-2026-001',
    lines: [
      { name: '*信息技术服务*软件开发', tax_code: '3040201000000000000', spec: '', unit: '项', quantity: '1', unit_price: '1000.00', tax_rate: '0.06' },
      { name: '*计算机配套产品*键盘', tax_code: '1090511030000000000', spec: 'K1', unit: '个', quantity: '2', unit_price: '199.00', tax_rate: '0.13' },
      { name: '*运输服务*运费', tax_code: '3010101020000000000', spec: '', unit: '次', quantity: '1', unit_price: '50', tax_rate: '0.09' },
    ],
    ...rest,
    buyer: { name: '深圳市前海某某科技有限公司', tax_id: BUYER_TAX_ID, address: '深圳市南山区', phone: '0755-12345678', bank: '招商银行深圳分行', account: '755900000000001', email: 'ap@example.cn', ...buyer },
  };
}

/** One line, e.g. for totals that are easy to reason about. */
export function oneLine(quantity: string, unitPrice: string, taxRate: string): LineBody {
  return { name: '*信息技术服务*技术服务费', tax_code: '3040201000000000000', quantity, unit_price: unitPrice, tax_rate: taxRate };
}

export interface TestMerchant {
  record: MerchantRecord;
  id: string;
  owner: { username: string; password: string };
  /** A Bearer API key per role. */
  keys: Record<Role, string>;
}

export interface Api {
  app: FastifyInstance;
  store: Store;
  clock: MovableClock;
  ports: Ports & { passwords: PasswordHasher };
  a: TestMerchant;
  b: TestMerchant;
  inject(options: InjectOptions): Promise<LightMyRequestResponse>;
  /** POST /api/v1/invoices with `key` as Bearer; a string or Buffer body is sent as it is. */
  issue(key: string, body: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  /** GET with `key` as Bearer; `query` values are URL-encoded. */
  get(key: string, path: string, query?: Record<string, string | number>): Promise<LightMyRequestResponse>;
  /** The same builder as the exported sampleInvoice, here for convenience. */
  sampleInvoice: typeof sampleInvoice;
  countInvoices(merchantId: string): Promise<number>;
  close(): Promise<void>;
}

export interface ApiOptions {
  merchantA?: Partial<MerchantInput>;
  merchantB?: Partial<MerchantInput>;
  clock?: MovableClock;
  /** Signs issued invoices, as the server does (R22). */
  signer?: InvoiceSigner;
  http?: Partial<HttpOptions>;
}

let seeds = randomInt(10_000_000, 80_000_000);
/** Distinct for every call in this process, so merchants of one store never share a taxpayer ID. */
const nextSeed = () => (seeds += 2);

export async function startApi(store: Store, options: ApiOptions = {}): Promise<Api> {
  const clock = options.clock ?? movableClock();
  const ports = { store, clock, passwords: argon2Hasher({ memoryCost: 1024, timeCost: 1 }), ...(options.signer && { signer: options.signer }) };
  const app = await buildApp(ports, { logger: false, ...options.http });
  await app.ready();

  // Fresh taxpayer IDs and user names each time, so several APIs can share one store.
  const seed = nextSeed();
  const a = await merchant(ports, `a-${seed}`, 'a', { name: '上海甲方信息技术有限公司', taxId: validUscc(seed), regionCode: '31', ...options.merchantA });
  const b = await merchant(ports, `b-${seed}`, 'b', { name: '北京乙方商贸有限公司', taxId: validUscc(seed + 1, '110105'), regionCode: '11', ...options.merchantB });

  const inject = (request: InjectOptions) => app.inject(request);
  return {
    app,
    store,
    clock,
    ports,
    a,
    b,
    inject,
    issue: (key, body, headers = {}) =>
      inject({
        method: 'POST',
        url: '/api/v1/invoices',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
        payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
      }),
    get: (key, path, query = {}) => {
      const search = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
      return inject({ method: 'GET', url: search ? `${path}?${search}` : path, headers: { authorization: `Bearer ${key}` } });
    },
    sampleInvoice,
    countInvoices: (merchantId) => store.read.invoices.count(merchantId),
    close: () => app.close(),
  };
}

async function merchant(ports: Ports & { passwords: PasswordHasher }, unique: string, tag: string, input: MerchantInput): Promise<TestMerchant> {
  const record = await addMerchant(ports, input);
  await grantTestNumbers(ports, record.id);
  const owner = { username: `owner-${unique}`, password: OWNER_PASSWORD };
  await addUser(ports, { merchantId: record.id, username: owner.username, password: owner.password, role: 'owner' });
  const keys = {} as Record<Role, string>;
  for (const role of roles) keys[role] = (await createApiKey(ports, { merchantId: record.id, role, label: `${tag}-${role}` })).key;
  return { record, id: record.id, owner, keys };
}

/** The parsed JSON body of an answer. */
export function body<T = any>(response: LightMyRequestResponse): T {
  return response.json() as T;
}

export interface ErrorBody {
  error: { code: number; message: string; message_en: string; remedy: string; remedy_en: string; details: Array<{ field: string; issue: string }>; request_id: string };
}
