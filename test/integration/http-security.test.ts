// R50/R54: login that tells the real reason, lockout with Retry-After, per-credential and per-IP
// rate limits, secure headers, and no secret in the logs.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { storesUnderTest, type OpenedStore } from '../support/stores.js';
import { movableClock, OWNER_PASSWORD, sampleInvoice, validUscc } from '../support/http.js';
import { buildApp } from '../../src/http/app.js';
import { addMerchant } from '../../src/app/merchants.js';
import { addUser } from '../../src/app/users.js';
import { createApiKey } from '../../src/app/api-keys.js';
import { argon2Hasher } from '../../src/security/passwords.js';

for (const kind of storesUnderTest) {
  describe(`HTTP security on ${kind.name}`, () => {
    let opened: OpenedStore;
    let app: FastifyInstance;
    let logs: string;
    let keys: string[];
    const clock = movableClock();

    beforeEach(async () => {
      opened = await kind.open();
      logs = '';
      const stream = new Writable({ write: (chunk, _encoding, done) => { logs += chunk.toString(); done(); } });
      const ports = { store: opened.store, clock, passwords: argon2Hasher({ memoryCost: 1024, timeCost: 1 }) };
      app = await buildApp(ports, { rateLimitPerKey: 5, rateLimitPerIp: 8, logger: { level: 'info', stream } });
      const merchant = await addMerchant(ports, { name: '销售方有限公司', taxId: validUscc(1), regionCode: '31' });
      await addUser(ports, { merchantId: merchant.id, username: 'clerk1', password: OWNER_PASSWORD, role: 'clerk' });
      keys = [];
      for (const label of ['till-1', 'till-2']) keys.push((await createApiKey(ports, { merchantId: merchant.id, role: 'clerk', label })).key);
    });
    afterEach(async () => {
      await app.close();
      await opened.cleanup();
    });

    const login = (password: string) =>
      app.inject({ method: 'POST', url: '/api/v1/session', payload: { username: 'clerk1', password }, remoteAddress: `10.0.0.${Math.floor(Math.random() * 250)}` });

    it('logs in with a session cookie that is HttpOnly and SameSite=Strict, and the cookie authenticates', async () => {
      const answer = await login(OWNER_PASSWORD);
      expect(answer.statusCode).toBe(200);
      const cookie = answer.cookies.find((c) => c.name === 'fapiao_session')!;
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
      const me = await app.inject({ method: 'GET', url: '/api/v1/merchant', cookies: { fapiao_session: cookie.value } });
      expect(me.statusCode).toBe(200);
      expect(me.json().name).toBe('销售方有限公司');
      const loggedOut = await app.inject({ method: 'DELETE', url: '/api/v1/session', cookies: { fapiao_session: cookie.value } });
      expect(loggedOut.statusCode).toBe(204);
      expect((await app.inject({ method: 'GET', url: '/api/v1/merchant', cookies: { fapiao_session: cookie.value } })).json().error.code).toBe(2005);
    });

    it('lets a person change their own password, checking the current one first', async () => {
      const session = (await login(OWNER_PASSWORD)).cookies[0]!.value;
      const change = (current: string, next: string, auth: object) =>
        app.inject({ method: 'PUT', url: '/api/v1/session/password', payload: { current_password: current, new_password: next }, ...auth });
      expect((await change('not my password', 'a brand new passphrase', { cookies: { fapiao_session: session } })).json().error.code).toBe(2001);
      expect((await change(OWNER_PASSWORD, 'short', { cookies: { fapiao_session: session } })).json().error.code).toBe(2008);
      expect((await change(OWNER_PASSWORD, 'x', { headers: { authorization: `Bearer ${keys[0]}` } })).json().error.code).toBe(2006);
      expect((await change(OWNER_PASSWORD, 'a brand new passphrase', { cookies: { fapiao_session: session } })).statusCode).toBe(204);
      expect((await login(OWNER_PASSWORD)).json().error.code).toBe(2001);
      expect((await login('a brand new passphrase')).statusCode).toBe(200);
    });

    it('tells a wrong password (2001) from a locked account (2002, 423, Retry-After)', async () => {
      for (let i = 0; i < 4; i++) expect((await login('wrong password!')).json().error.code).toBe(2001);
      const locked = await login('wrong password!');
      expect(locked.statusCode).toBe(423);
      expect(locked.json().error.code).toBe(2002);
      expect(locked.headers['retry-after']).toBe('30');
      expect((await login(OWNER_PASSWORD)).json().error.code).toBe(2002);
      clock.advance(31_000);
      expect((await login(OWNER_PASSWORD)).statusCode).toBe(200);
    });

    it('limits each API key on its own: the 6th call in a minute gets 429 with Retry-After, another key is unaffected', async () => {
      const call = (key: string) => app.inject({ method: 'GET', url: '/api/v1/invoices', headers: { authorization: `Bearer ${key}` } });
      for (let i = 0; i < 5; i++) expect((await call(keys[0]!)).statusCode).toBe(200);
      const limited = await call(keys[0]!);
      expect(limited.statusCode).toBe(429);
      expect(limited.json().error.code).toBe(7002);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect((await call(keys[1]!)).statusCode).toBe(200);
    });

    it('limits anonymous callers per IP address', async () => {
      const call = (ip: string) => app.inject({ method: 'GET', url: '/healthz', remoteAddress: ip });
      for (let i = 0; i < 8; i++) expect((await call('192.0.2.1')).statusCode).toBe(200);
      expect((await call('192.0.2.1')).statusCode).toBe(429);
      expect((await call('192.0.2.2')).statusCode).toBe(200);
    });

    it('counts public routes, login among them, per IP address whatever credential comes with them: a made-up one resets nothing', async () => {
      const madeUp = () => ({ cookie: `fapiao_session=${randomBytes(16).toString('hex')}`, authorization: `Bearer fpk_${randomBytes(8).toString('hex')}_x` });
      const health = () => app.inject({ method: 'GET', url: '/healthz', remoteAddress: '192.0.2.7', headers: madeUp() });
      for (let i = 0; i < 8; i++) expect((await health()).statusCode).toBe(200);
      expect((await health()).statusCode).toBe(429);
      const login = () => app.inject({ method: 'POST', url: '/api/v1/session', remoteAddress: '192.0.2.8', headers: madeUp(), payload: { username: 'nobody-here', password: 'guess' } });
      for (let i = 0; i < 30; i++) expect((await login()).statusCode).toBe(401);
      expect((await login()).json().error.code).toBe(7002);
    });

    it('sends secure headers and a request id', async () => {
      const answer = await app.inject({ method: 'GET', url: '/healthz' });
      expect(answer.headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'x-frame-options': 'SAMEORIGIN', 'referrer-policy': 'no-referrer' });
      expect(answer.headers['content-security-policy']).toContain("default-src 'self'");
      expect(answer.headers['x-request-id']).toMatch(/^[\w-]{8,}$/);
      // Refusals carry them too.
      const refused = await app.inject({ method: 'GET', url: '/api/v1/invoices', headers: { authorization: 'Bearer fpk_nope' } });
      expect(refused.statusCode).toBe(401);
      expect(refused.headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'strict-transport-security': 'max-age=31536000; includeSubDomains' });
    });

    it('never writes a password, API key or session token into the log', async () => {
      const session = (await login(OWNER_PASSWORD)).cookies[0]!.value;
      await login('a wrong guess!!');
      await app.inject({ method: 'POST', url: '/api/v1/invoices', headers: { authorization: `Bearer ${keys[0]}` }, payload: sampleInvoice() });
      await app.inject({ method: 'GET', url: '/api/v1/invoices', cookies: { fapiao_session: session } });
      await app.inject({ method: 'GET', url: '/api/v1/invoices', headers: { authorization: `Bearer ${keys[0]}x` } });
      expect(logs.length).toBeGreaterThan(0);
      // The key's secret part (after fpk_<id>_) is base64url, which may itself hold an underscore.
      for (const secret of [OWNER_PASSWORD, 'a wrong guess!!', keys[0]!, /^fpk_[0-9a-f]+_(.+)$/.exec(keys[0]!)![1]!, session]) expect(logs).not.toContain(secret);
    });

    it('hides the stack of an unexpected error behind 9001 and a request id', async () => {
      app.get('/boom', { config: { public: true } }, async () => {
        throw new Error('secret internals at /srv/fapiao');
      });
      const answer = await app.inject({ method: 'GET', url: '/boom' });
      expect(answer.statusCode).toBe(500);
      const { error } = answer.json();
      expect(error).toMatchObject({ code: 9001, request_id: answer.headers['x-request-id'] });
      expect(answer.body).not.toContain('secret internals');
      expect(logs).toContain('secret internals'); // the operator still finds it, under the request id
      expect(logs).toContain(String(answer.headers['x-request-id']));
    });
  });
}
