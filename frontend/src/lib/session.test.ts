import { describe, expect, it } from 'vitest';
import { isReadOnly, READ_ONLY_TICKET_NOTE, readOnlyReason, toSession } from './session';

describe('session scope', () => {
  it('takes a missing scope (an older server) for a trading key', () => {
    expect(toSession({ accountId: 3, name: 'desk1' })).toEqual({ accountId: 3, name: 'desk1', scope: 'TRADE' });
    expect(toSession({ accountId: 3, name: 'desk1', scope: null }).scope).toBe('TRADE');
  });

  it('keeps the scope the server sends', () => {
    expect(toSession({ accountId: 3, name: 'desk1', scope: 'TRADE' })).toEqual({
      accountId: 3,
      name: 'desk1',
      scope: 'TRADE',
    });
    expect(toSession({ accountId: 7, name: 'audit', scope: 'READ' })).toEqual({
      accountId: 7,
      name: 'audit',
      scope: 'READ',
    });
  });

  it('leaves a scope it does not know to the server', () => {
    expect(toSession({ accountId: 3, name: 'desk1', scope: 'WITHDRAW' }).scope).toBe('TRADE');
    expect(toSession({ accountId: 3, name: 'desk1', scope: '' }).scope).toBe('TRADE');
  });

  it('is read-only only for a READ key', () => {
    expect(isReadOnly({ scope: 'READ' })).toBe(true);
    expect(isReadOnly({ scope: 'TRADE' })).toBe(false);
    expect(isReadOnly(toSession({ accountId: 3, name: 'desk1' }))).toBe(false);
  });
});

describe('read-only words', () => {
  it('says why a control is disabled', () => {
    expect(readOnlyReason('cancelling orders')).toBe('Read-only key: cancelling orders needs a trading key');
    expect(READ_ONLY_TICKET_NOTE).toBe('Read-only key: placing orders needs a trading key.');
  });
});
