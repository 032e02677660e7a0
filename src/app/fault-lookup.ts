// The fault catalogue as people read it: by the API (/api/v1/errors), the CLI (`fapiao errors`)
// and docs/fault-codes.md.
import { Fault, faultByCode, faults, type FaultSpec } from '../domain/faults.js';

export function faultView(spec: FaultSpec) {
  return { code: spec.code, http_status: spec.http, message: spec.zh, message_en: spec.en, cause: spec.cause, remedy: spec.remedy, remedy_en: spec.remedyEn };
}

/** The catalogue entry of a code as typed ("1001"); anything else is refused with 1023. */
export function lookUpFault(code: string): FaultSpec {
  // Four digits only: Number() would read "1e3" as 1000 and "" as 0.
  const spec = /^\d{4}$/.test(code) ? faultByCode(Number(code)) : undefined;
  if (!spec) throw new Fault(faults.FAULT_CODE_UNKNOWN, { code }, [{ field: 'code', issue: 'not a code of the fault catalogue' }]);
  return spec;
}

export function faultCatalogueMarkdown(): string {
  const rows = Object.values(faults)
    .sort((a, b) => a.code - b.code)
    .map((s) => `## ${s.code}\n\n- HTTP ${s.http}\n- 中文：${s.zh}\n- English: ${s.en}\n- Cause: ${s.cause}\n- 处理：${s.remedy}\n- Remedy: ${s.remedyEn}\n`);
  return [
    '# Fault codes (故障代码库)',
    '',
    'Generated from `src/domain/faults.ts` by `npm run docs:faults`; a test fails when this file is stale.',
    'Ranges: 1xxx input · 2xxx identity and permission · 3xxx business rules and limits · 4xxx tax service and contingency ·',
    '5xxx storage and backup · 6xxx documents, printing, delivery · 7xxx capacity, maintenance, degraded mode · 9xxx internal.',
    'Look a code up with `fapiao errors <code>` or `GET /api/v1/errors/<code>`.',
    'A placeholder such as {reason} is filled in the language of its message: the Chinese message gets a Chinese reason.',
    '',
    ...rows,
  ].join('\n');
}
