// Settings come from the environment once, at start-up; a value that means nothing stops the start
// with the setting's name instead of running with a guess.
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.js';

describe('FAPIAO_PG_NAMED_STATEMENTS', () => {
  it('is on unless set', () => {
    expect(readConfig({}).namedStatements).toBe(true);
    expect(readConfig({ FAPIAO_PG_NAMED_STATEMENTS: '' }).namedStatements).toBe(true);
  });

  it('takes on and off', () => {
    expect(readConfig({ FAPIAO_PG_NAMED_STATEMENTS: 'off' }).namedStatements).toBe(false);
    expect(readConfig({ FAPIAO_PG_NAMED_STATEMENTS: 'on' }).namedStatements).toBe(true);
  });

  it('refuses anything else by name', () => {
    for (const value of ['0', 'false', 'OFF', 'yes']) {
      expect(() => readConfig({ FAPIAO_PG_NAMED_STATEMENTS: value })).toThrow(`FAPIAO_PG_NAMED_STATEMENTS must be on or off, got "${value}"`);
    }
  });
});

describe('FAPIAO_PUBLIC_URL, printed in every QR code', () => {
  it('is where the server listens, when that is an address', () => {
    expect(readConfig({}).publicUrl).toBe('http://127.0.0.1:8080');
    expect(readConfig({ HOST: '192.168.1.20', PORT: '9000' }).publicUrl).toBe('http://192.168.1.20:9000');
    expect(readConfig({ HOST: '::1' }).publicUrl).toBe('http://[::1]:8080');
  });

  it('must be given when the server listens on every address', () => {
    for (const host of ['0.0.0.0', '::']) {
      expect(() => readConfig({ HOST: host })).toThrow(`FAPIAO_PUBLIC_URL must be set when HOST=${host}`);
      expect(readConfig({ HOST: host, FAPIAO_PUBLIC_URL: 'https://fapiao.example.com/' }).publicUrl).toBe('https://fapiao.example.com');
    }
  });

  it('refuses what is not an http(s) address', () => {
    for (const value of ['fapiao.example.com', 'ftp://fapiao.example.com', 'javascript:alert(1)']) {
      expect(() => readConfig({ FAPIAO_PUBLIC_URL: value })).toThrow(`FAPIAO_PUBLIC_URL must be an http(s) address, got "${value}"`);
    }
  });
});

// Upload settings whose defaults depend on the database (config.ts). A submission's bookkeeping holds
// what issues wait for: SQLite's one write lock, briefly if the submission is small; PostgreSQL's
// merchant row across round trips, best seldom. More lanes keep the tax service busier during a
// drain on SQLite; on PostgreSQL every lane of every instance takes turns on the merchant's row lock.
describe.each([
  { variable: 'FAPIAO_UPLOAD_POLL_MS', setting: 'pollMs', sqlite: 100, postgres: 500, set: 250 },
  { variable: 'FAPIAO_UPLOAD_LANES', setting: 'lanes', sqlite: 5, postgres: 2, set: 4 },
  { variable: 'FAPIAO_UPLOAD_BATCH', setting: 'batchSize', sqlite: 500, postgres: 1000, set: 200 },
] as const)('$variable', ({ variable, setting, sqlite, postgres, set }) => {
  const onPostgres = { DATABASE_URL: 'postgres://fapiao@db/fapiao' };
  it(`is ${sqlite} on SQLite and ${postgres} on PostgreSQL unless set`, () => {
    expect(readConfig({}).upload[setting]).toBe(sqlite);
    expect(readConfig(onPostgres).upload[setting]).toBe(postgres);
    expect(readConfig({ [variable]: String(set) }).upload[setting]).toBe(set);
    expect(readConfig({ ...onPostgres, [variable]: String(set) }).upload[setting]).toBe(set);
  });
});

describe('FAPIAO_UPLOAD_LANES', () => {
  it('refuses no lane at all, and more lanes than the database connections can serve, by name', () => {
    for (const value of ['0', '9', '-1', 'two']) expect(() => readConfig({ FAPIAO_UPLOAD_LANES: value })).toThrow('FAPIAO_UPLOAD_LANES must');
    expect(readConfig({ FAPIAO_UPLOAD_LANES: '8' }).upload.lanes).toBe(8);
  });
});

describe('FAPIAO_UPLOAD_BATCH', () => {
  it('refuses what the protocol cannot take in one submission, by name', () => {
    for (const value of ['0', '1001', '-5', 'many']) expect(() => readConfig({ FAPIAO_UPLOAD_BATCH: value })).toThrow('FAPIAO_UPLOAD_BATCH must');
  });
});
