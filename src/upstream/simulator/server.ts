// `fapiao simulator`: the sandbox tax service on a port of its own, with its own database under
// --data-dir, so it keeps what it holds across its own restarts.
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { sandboxPlugin, type SandboxOptions } from './plugin.js';

export interface StandaloneSandbox {
  app: FastifyInstance;
  /** The base URL of the protocol (what FAPIAO_UPSTREAM_URL would be), e.g. http://127.0.0.1:9400 */
  url: string;
  close(): Promise<void>;
}

export function sandboxDbFile(dataDir: string): string {
  return join(dataDir, 'sandbox-tax-service.db');
}

export async function startSandbox(options: { dataDir: string; port?: number; host?: string; logger?: boolean } & Omit<SandboxOptions, 'dbFile'>): Promise<StandaloneSandbox> {
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 32 * 1024 * 1024, forceCloseConnections: true });
  await app.register(sandboxPlugin({ dbFile: sandboxDbFile(options.dataDir), openEnrollment: options.openEnrollment, adminToken: options.adminToken }));
  const address = await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  const port = (app.server.address() as { port: number }).port;
  return { app, url: address.includes('[') ? address : `http://${options.host ?? '127.0.0.1'}:${port}`, close: () => app.close() };
}
