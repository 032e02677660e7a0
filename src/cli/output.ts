// How the CLI speaks: JSON for machines (--json), short lines for people, and faults in both
// languages with their remedy. Exit codes: 0 ok, 1 a check failed, 2 refused input, 3 internal.
import { Fault, faults } from '../domain/faults.js';
import type { creditLineView } from '../http/routes/status.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
}

export function reportError(error: unknown, json: boolean): number {
  const fault = error instanceof Fault ? error : new Fault(faults.INTERNAL, { requestId: 'cli' });
  if (!(error instanceof Fault)) process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  if (json) {
    printJson({ error: { code: fault.code, message: fault.messageIn('zh'), message_en: fault.messageIn('en'), remedy: fault.spec.remedy, remedy_en: fault.spec.remedyEn, details: fault.details } });
  } else {
    process.stderr.write(
      [`错误 ${fault.code}：${fault.messageIn('zh')}`, `Error ${fault.code}: ${fault.messageIn('en')}`,
        ...fault.details.map((d) => `  - ${d.field}: ${d.issue}`), `处理 / Remedy: ${fault.spec.remedy} / ${fault.spec.remedyEn}`].join('\n') + '\n',
    );
  }
  return error instanceof Fault ? 2 : 3;
}

/** The month's credit line (授信额度) for people: what applies, both sources, and which binds. */
export function creditLineText(c: ReturnType<typeof creditLineView>): string {
  const yuan = (value: string | null) => (value === null ? 'none' : `${value} yuan`);
  const binds = c.binding === null ? '' : { tax_service: "; the tax service's grant binds", operator: "; the operator's limit binds", both: '; both bind' }[c.binding];
  return `monthly credit ${yuan(c.limit)} (tax service ${yuan(c.tax_service)}, operator ${yuan(c.operator)}${binds})`;
}
