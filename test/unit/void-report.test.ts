// Where an invoice's upload stands once the status no longer says it, and when a void (作废) may be
// told to the tax service: only after the tax service holds the invoice, never on top of a conflict.
import { describe, expect, it } from 'vitest';
import type { InvoiceStatus } from '../../src/domain/invoice.js';
import { uploadState, voidSettled, voidStep, voidVerdict, type UploadState, type VoidResult } from '../../src/domain/void-report.js';

const at = '2026-03-10T10:00:00.000+08:00';

describe('the upload state shown for an invoice', () => {
  it.each<[InvoiceStatus, string | null, 'rejected' | 'quarantined' | undefined, UploadState]>([
    ['issued', null, undefined, 'pending'],
    ['uploaded', null, undefined, 'uploaded'],
    ['reversed', null, undefined, 'uploaded'],
    ['rejected', null, undefined, 'rejected'],
    ['voided', null, undefined, 'pending'], // voided before its upload ran: the upload still comes
    ['voided', at, undefined, 'uploaded'], // the tax service accepted it (before or after the void)
    ['voided', null, 'rejected', 'rejected'],
    ['issued', null, 'quarantined', 'quarantined'],
    ['voided', at, 'quarantined', 'quarantined'], // what the tax service said wins
  ])('%s, uploaded at %s, problem %s → %s', (status, uploadedAt, problem, expected) => {
    expect(uploadState({ status, uploadedAt }, problem)).toBe(expected);
  });

  it('does not stay pending for a voided invoice whose upload was accepted', () => {
    expect(uploadState({ status: 'voided', uploadedAt: at })).not.toBe('pending');
  });

  it('says rejected, without the problem at hand, for a voided invoice whose void was settled as not needed (its upload was rejected)', () => {
    expect(uploadState({ status: 'voided', uploadedAt: null, voidReport: { state: 'not_needed', at, reason: null } })).toBe('rejected');
    expect(uploadState({ status: 'voided', uploadedAt: null, voidReport: { state: 'pending', at: null, reason: null } })).toBe('pending');
  });
});

describe('when a void is sent to the tax service', () => {
  it.each<[UploadState, ReturnType<typeof voidStep>]>([
    ['uploaded', 'send'], // it holds the invoice
    ['pending', 'wait'], // upload first, then void
    ['quarantined', 'wait'], // it holds ANOTHER invoice under the number: a person settles that first
    ['rejected', 'not_needed'], // it never accepted the invoice
  ])('upload %s → %s', (upload, step) => expect(voidStep(upload)).toBe(step));
});

describe('what the tax service\'s answer to a void settles', () => {
  it.each<[VoidResult, ReturnType<typeof voidVerdict>]>([
    ['voided', 'reported'],
    ['already_voided', 'reported'], // a repeated request is harmless: the same outcome
    ['refused', 'refused'],
    ['failed', 'failed'], // not processed: sent again
  ])('%s → %s', (result, verdict) => expect(voidVerdict(result)).toBe(verdict));

  it('counts a void as settled once it is no longer pending', () => {
    expect(voidSettled(null)).toBe(false);
    expect(voidSettled({ state: 'pending', at: null, reason: null })).toBe(false);
    for (const state of ['reported', 'refused', 'not_needed'] as const) expect(voidSettled({ state, at, reason: null })).toBe(true);
  });
});
