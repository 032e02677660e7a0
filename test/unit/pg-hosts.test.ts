import { describe, expect, it } from 'vitest';
import { parseHostList } from '../../src/store/pg-hosts.js';

describe('multi-host DATABASE_URL', () => {
  it('leaves a single-host URL to node-postgres', () => {
    expect(parseHostList('postgres://u@db:5432/fapiao')).toBeUndefined();
  });

  it('reads every host, with 5432 where no port is given, and drops target_session_attrs for pg', () => {
    const list = parseHostList('postgres://u:p%40ss@10.0.0.1:5441,db2,[::1]:5443/fapiao?target_session_attrs=read-write&sslmode=disable')!;
    expect(list.target).toBe('read-write');
    expect(list.hosts).toEqual([{ host: '10.0.0.1', port: 5441 }, { host: 'db2', port: 5432 }, { host: '::1', port: 5443 }]);
    expect(list.url).toBe('postgres://u:p%40ss@10.0.0.1:5441/fapiao?sslmode=disable');
    expect(list.urlFor(list.hosts[2]!)).toBe('postgres://u:p%40ss@[::1]:5443/fapiao?sslmode=disable');
  });

  it('keeps the other parameters as written, for libpq tools too (which read no "+" as a space)', () => {
    const list = parseHostList('postgres://a,b/x?options=-c%20search_path%3Dfapiao&target_session_attrs=read-write&sslmode=require')!;
    expect(list.urlFor(list.hosts[1]!)).toBe('postgres://b:5432/x?options=-c%20search_path%3Dfapiao&sslmode=require');
  });

  it('honours target_session_attrs on a single host too', () => {
    expect(parseHostList('postgresql://db:5432/x?target_session_attrs=primary')?.hosts).toEqual([{ host: 'db', port: 5432 }]);
  });

  it('refuses a target it does not implement, naming it', () => {
    expect(() => parseHostList('postgres://a,b/x?target_session_attrs=standby')).toThrow(/standby/);
    expect(() => parseHostList('postgres://a,:5432/x')).toThrow(/cannot read the host/);
  });
});
