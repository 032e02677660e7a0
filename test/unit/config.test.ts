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
