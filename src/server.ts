// `fapiao serve` / `npm start`: open the store (migrating it), make sure someone can log in,
// and serve HTTP until told to stop.
import { randomBytes } from 'node:crypto';
import type { Config } from './config.js';
import { openStore } from './store/database.js';
import { buildApp } from './http/app.js';
import { argon2Hasher } from './security/passwords.js';
import { systemClock } from './domain/time.js';
import { addMerchant } from './app/merchants.js';
import { addUser } from './app/users.js';
import type { Ports } from './app/ports.js';
import type { PasswordHasher } from './security/passwords.js';
import { purgeExpired } from './app/housekeeping.js';

const HOUSEKEEPING_INTERVAL_MS = 10 * 60_000;

/** A demo merchant with a valid USCC, so a fresh install can issue straight away. */
const DEMO_MERCHANT = { name: '示例商贸有限公司（演示）', taxId: '91350100M000100Y43', regionCode: '35', address: '福建省福州市鼓楼区示例路1号', phone: '0591-88888888' };

export async function serve(config: Config): Promise<void> {
  const store = await openStore(config);
  const ports = { store, clock: systemClock, passwords: argon2Hasher() };
  const app = await buildApp(ports, {
    logger: { level: config.logLevel },
    ...(config.rateLimitPerKey !== undefined && { rateLimitPerKey: config.rateLimitPerKey }),
    ...(config.rateLimitPerIp !== undefined && { rateLimitPerIp: config.rateLimitPerIp }),
  });
  await ensureSomeoneCanLogIn(ports, config);
  await app.listen({ host: config.host, port: config.port });
  const housekeeping = setInterval(() => {
    purgeExpired(ports).then(
      (purged) => app.log.info({ purged }, 'housekeeping'),
      (error) => app.log.warn({ err: error }, 'housekeeping failed; will retry'),
    );
  }, HOUSEKEEPING_INTERVAL_MS);
  housekeeping.unref();

  const stop = async (signal: string) => {
    app.log.info({ signal }, 'shutting down');
    clearInterval(housekeeping);
    await app.close();
    await store.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

async function ensureSomeoneCanLogIn(ports: Ports & { passwords: PasswordHasher }, config: Config): Promise<void> {
  if ((await ports.store.read.merchants.list()).length > 0) return;
  const merchant = await addMerchant(ports, DEMO_MERCHANT, 'first-start');
  const password = config.adminPassword ?? randomBytes(12).toString('base64url');
  await addUser(ports, { merchantId: merchant.id, username: 'admin', password, role: 'owner', actor: 'first-start' });
  const shown = config.adminPassword ? '(the value of FAPIAO_ADMIN_PASSWORD)' : password;
  process.stdout.write(
    [
      '',
      '首次启动：已创建演示商户和管理员账户 / First start: a demo merchant and an owner account were created',
      `  merchant: ${merchant.name} (${merchant.id})`,
      `  user:     admin`,
      `  password: ${shown}   ← shown once; change it after logging in (PUT /api/v1/session/password)`,
      `  log in:   POST http://${config.host}:${config.port}/api/v1/session {"username":"admin","password":"…"}`,
      '',
    ].join('\n') + '\n',
  );
}
