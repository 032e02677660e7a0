// What migrating applies or undoes, named from the migration list, so a test of one migration does
// not have to name every migration written after it.
import { MIGRATION_NAMES } from '../../src/store/migrate.js';

/** The migrations after `name`, each 'Success', in the order migrating up to the latest applies them. */
export const appliedAfter = (name: string): Array<[string, string]> => MIGRATION_NAMES.filter((n) => n > name).map((n) => [n, 'Success']);

/** The same, in the order migrating down to `name` undoes them (newest first). */
export const undoneDownTo = (name: string): Array<[string, string]> => appliedAfter(name).reverse();
