import type { Ports } from '../app/ports.js';
import type { PasswordHasher } from '../security/passwords.js';
import type { Metrics } from '../ops/metrics.js';
import type { Admission } from './admission.js';

/** What every route module is given. */
export interface HttpContext {
  ports: Ports & { passwords: PasswordHasher };
  metrics: Metrics;
  admission: Admission;
}
