// What backup and restore need from each kind of database; sqlite.ts and postgres.ts provide it.
import type { StoreConfig } from '../database.js';
import type { DataFacts, Dialect, Manifest, Progress } from './manifest.js';

export interface Snapshot {
  facts: DataFacts;
  tools: Record<string, string>;
  postgresSchema?: string;
}

/** A restored copy that nobody else uses: verified, and on a real restore moved into place. */
export interface ScratchDatabase {
  config: StoreConfig;
  /** Read before migrating, so they compare with the manifest as taken. */
  facts(): Promise<DataFacts>;
  discard(): Promise<void>;
}

export interface DialectBackup {
  dialect: Dialect;
  /** The data file's name inside a backup (before any `.enc`). */
  dataFile: string;
  /** True when restoring needs a private, writable copy of the data file in the work directory. */
  copiesDataFile: boolean;
  /** Copies one consistent state of the live database to `target`, with facts from that same state. */
  snapshot(target: string, progress: Progress): Promise<Snapshot>;
  /** Restores the plain data file into a scratch database under `work` (nothing live is touched). */
  scratch(plainFile: string, work: string, manifest: Manifest, progress: Progress): Promise<ScratchDatabase>;
  /** Refuses early when a real restore could not replace the live database. */
  checkNotInUse(): Promise<void>;
  /** Replaces the live database with the verified scratch copy in one step; says where the old one went, if kept. */
  moveIn(scratch: ScratchDatabase, progress: Progress): Promise<string | undefined>;
}
