// A DATABASE_URL may name several hosts, as libpq allows, so that a promoted standby takes over
// without anyone editing configuration:
//   postgres://user@10.0.0.1:5432,10.0.0.2:5432/fapiao?target_session_attrs=read-write
// node-postgres understands neither the host list nor target_session_attrs, so this module does
// what libpq does: each new pool connection goes to the host that takes writes right now. The
// choice is cached; it is made again (every host probed with `select pg_is_in_recovery()`) when a
// connection to the chosen host fails or finds it in recovery.
import pg from 'pg';

export interface HostPort {
  host: string;
  port: number;
}

/** libpq's target_session_attrs values this module honours. */
type SessionTarget = 'any' | 'read-write' | 'primary';

export interface HostList {
  hosts: HostPort[];
  target: SessionTarget;
  /** The same URL with only the first host and without target_session_attrs, for pg to parse. */
  url: string;
  /** The same URL naming only `host` (pg lets a URL's host and port win over `host`/`port` settings). */
  urlFor(host: HostPort): string;
}

const URL_SHAPE = /^(postgres(?:ql)?:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/i;

/** Splits a URL's host list; undefined when there is nothing for this module to do. */
export function parseHostList(url: string): HostList | undefined {
  const match = URL_SHAPE.exec(url);
  if (!match) return undefined;
  const [, scheme, userinfo = '', authority = '', rest = ''] = match;
  const [path = '', query] = splitOnce(rest, '?');
  const params = new URLSearchParams(query ?? '');
  const target = params.get('target_session_attrs') ?? 'any';
  if (target !== 'any' && target !== 'read-write' && target !== 'primary') {
    throw new Error(`DATABASE_URL: target_session_attrs=${target} is not supported (use read-write, primary or any)`);
  }
  if (!authority.includes(',') && target === 'any') return undefined; // one host (or a socket): pg's own business
  const hosts = authority.split(',').map(parseHost);
  // The other parameters as they were written: URLSearchParams would encode spaces as '+', which
  // libpq (pg_dump, psql) does not decode.
  const remaining = (query ?? '').split('&').filter((pair) => pair !== '' && !pair.startsWith('target_session_attrs=')).join('&');
  const urlFor = (host: HostPort) => `${scheme}${userinfo}${formatHost(host)}${path}${remaining ? `?${remaining}` : ''}`;
  return { hosts, target, url: urlFor(hosts[0]!), urlFor };
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

function parseHost(entry: string): HostPort {
  const match = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(entry.trim());
  if (!match || match[1] === '') throw new Error(`DATABASE_URL: cannot read the host "${entry}"`);
  return { host: decodeURIComponent(match[1]!.replace(/^\[(.*)\]$/, '$1')), port: match[2] ? Number(match[2]) : 5432 };
}

function formatHost({ host, port }: HostPort): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

const named = (h: HostPort) => `${h.host}:${h.port}`;

/** "Cannot connect now": translated to 5001 with the other unreachable-database errors. */
export class NoWritableHost extends Error {
  readonly code = '08001'; // sqlclient_unable_to_establish_sqlconnection
  constructor(tried: string) {
    super(`no PostgreSQL host takes writes right now (${tried})`);
  }
}

/** A host that was in recovery is told apart from one that did not answer. */
const WRITABLE_CHECK = "select pg_is_in_recovery() as recovery, current_setting('transaction_read_only') = 'on' as read_only";

function acceptable(target: SessionTarget, row: { recovery: boolean; read_only: boolean } | undefined): boolean {
  if (!row) return false;
  if (target === 'any') return true;
  return target === 'primary' ? !row.recovery : !row.recovery && !row.read_only;
}

/** After a probe found no writable host, new connections fail at once for this long instead of probing again. */
const NOTHING_FOUND_HOLD_MS = 100;

/** Which host new connections go to: cached, and found again when it stops being right. */
class HostChooser {
  private chosen: HostPort | undefined;
  private probing: Promise<HostPort> | undefined;
  private nothingUntil = 0;
  private nothingReason = '';

  constructor(
    private readonly list: HostList,
    private readonly clientConfig: pg.ClientConfig,
  ) {}

  async host(): Promise<HostPort> {
    if (this.chosen) return this.chosen;
    if (Date.now() < this.nothingUntil) throw new NoWritableHost(this.nothingReason);
    this.probing ??= this.probe().finally(() => (this.probing = undefined));
    return this.probing;
  }

  /** The host failed us (refused, dropped, or in recovery): the next connection probes again. */
  forget(host: HostPort): void {
    if (this.chosen === host) this.chosen = undefined;
  }

  check(row: { recovery: boolean; read_only: boolean } | undefined): boolean {
    return acceptable(this.list.target, row);
  }

  private async probe(): Promise<HostPort> {
    // All at once, each bounded by the connection timeout; the first good one in the order given
    // wins, as with libpq.
    const verdicts = await Promise.all(this.list.hosts.map((host) => this.ask(host)));
    const index = verdicts.findIndex((v) => v === 'ok');
    if (index >= 0) {
      this.chosen = this.list.hosts[index]!;
      return this.chosen;
    }
    this.nothingReason = this.list.hosts.map((h, i) => `${named(h)}: ${verdicts[i]}`).join('; ');
    this.nothingUntil = Date.now() + NOTHING_FOUND_HOLD_MS;
    throw new NoWritableHost(this.nothingReason);
  }

  private async ask(host: HostPort): Promise<string> {
    const client = new pg.Client({ ...this.clientConfig, connectionString: this.list.urlFor(host) });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ recovery: boolean; read_only: boolean }>(WRITABLE_CHECK);
      return this.check(rows[0]) ? 'ok' : 'not writable (in recovery or read-only)';
    } catch (error) {
      return (error as Error).message;
    } finally {
      client.end().catch(() => undefined);
    }
  }
}

/**
 * The URL of the one host a multi-host URL's target_session_attrs asks for, found now; any other
 * URL as it is. For work that must stay on one server from start to end, with clients that know one
 * host only (a backup's exported snapshot and the pg_dump that joins it; a restore).
 */
export async function oneHostUrl(url: string, clientConfig: pg.ClientConfig = {}): Promise<string> {
  const list = parseHostList(url);
  return list ? list.urlFor(await new HostChooser(list, clientConfig).host()) : url;
}

type Callback = (error: Error | null, client?: pg.Client) => void;

/**
 * A pg.Client class for the pool (`new pg.Pool({ Client })`) that connects to the host the
 * list's target_session_attrs asks for. `clientConfig` bounds each probe (connection timeout).
 */
export function hostListClient(list: HostList, clientConfig: pg.ClientConfig): typeof pg.Client {
  const chooser = new HostChooser(list, clientConfig);

  class HostListClient extends pg.Client {
    override connect(): Promise<pg.Client>;
    override connect(callback: Callback): void;
    override connect(callback?: Callback): Promise<pg.Client> | void {
      const connected = this.connectToChosen();
      if (!callback) return connected;
      connected.then((client) => callback(null, client), (error: Error) => callback(error));
    }

    private async connectToChosen(): Promise<pg.Client> {
      const host = await chooser.host();
      this.host = host.host;
      this.port = host.port;
      try {
        await super.connect();
        const { rows } = await this.query<{ recovery: boolean; read_only: boolean }>(WRITABLE_CHECK);
        if (!chooser.check(rows[0])) throw new NoWritableHost(`${named(host)} is no longer writable`);
      } catch (error) {
        chooser.forget(host);
        this.end().catch(() => undefined);
        throw error;
      }
      // A connection that drops (the server died, was stopped, or a network cut it) sends the next
      // new connection looking again.
      this.on('error', () => chooser.forget(host));
      return this;
    }
  }
  return HostListClient;
}
