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

describe('FAPIAO_UPLOAD_POLL_MS', () => {
  // A submission's bookkeeping holds what issues wait for: SQLite's write lock, briefly if it is
  // small; PostgreSQL's merchant row across round trips, best seldom (config.ts, uploadPollMs).
  it('looks for new invoices to upload every 100 ms on SQLite and every 500 ms on PostgreSQL unless set', () => {
    expect(readConfig({}).upload.pollMs).toBe(100);
    expect(readConfig({ DATABASE_URL: 'postgres://fapiao@db/fapiao' }).upload.pollMs).toBe(500);
    expect(readConfig({ FAPIAO_UPLOAD_POLL_MS: '250' }).upload.pollMs).toBe(250);
    expect(readConfig({ DATABASE_URL: 'postgres://fapiao@db/fapiao', FAPIAO_UPLOAD_POLL_MS: '250' }).upload.pollMs).toBe(250);
  });
});

describe('FAPIAO_UPLOAD_LANES', () => {
  // A third lane keeps the tax service busier during a drain on SQLite; on PostgreSQL every lane of
  // every instance takes turns on the merchant's row lock (config.ts, uploadLanes).
  it('runs 3 upload loops side by side on SQLite and 2 on PostgreSQL unless set', () => {
    expect(readConfig({}).upload.lanes).toBe(3);
    expect(readConfig({ DATABASE_URL: 'postgres://fapiao@db/fapiao' }).upload.lanes).toBe(2);
    expect(readConfig({ FAPIAO_UPLOAD_LANES: '1' }).upload.lanes).toBe(1);
    expect(readConfig({ DATABASE_URL: 'postgres://fapiao@db/fapiao', FAPIAO_UPLOAD_LANES: '4' }).upload.lanes).toBe(4);
  });
});

describe('FAPIAO_UPLOAD_BATCH', () => {
  // While a backlog drains, a submission's claim and bookkeeping hold SQLite's write lock in
  // proportion to its size; PostgreSQL prefers fewer turns on the merchant's lock (config.ts).
  it('submits at most 500 invoices at once on SQLite and 1000 on PostgreSQL unless set', () => {
    expect(readConfig({}).upload.batchSize).toBe(500);
    expect(readConfig({ DATABASE_URL: 'postgres://fapiao@db/fapiao' }).upload.batchSize).toBe(1000);
    expect(readConfig({ FAPIAO_UPLOAD_BATCH: '200' }).upload.batchSize).toBe(200);
  });

  it('refuses what the protocol cannot take in one submission, by name', () => {
    for (const value of ['0', '1001', '-5', 'many']) expect(() => readConfig({ FAPIAO_UPLOAD_BATCH: value })).toThrow('FAPIAO_UPLOAD_BATCH must');
  });
});
