import { describe, expect, it } from 'vitest';
import type { Instrument } from '../api/types';
import {
  acceptsAmends,
  acceptsCancels,
  acceptsOrders,
  amendRefusedReason,
  cancelRefusedReason,
  instrumentsFailedText,
  mergeInstruments,
  statusText,
  symbolOptionText,
} from './instruments';

function inst(symbol: string, over: Partial<Instrument> = {}): Instrument {
  return {
    symbol,
    base: symbol.split('/')[0],
    quote: symbol.split('/')[1],
    tickSize: '0.01',
    stepSize: '0.00001',
    minQuantity: '0.00001',
    maxQuantity: '1000',
    minNotional: '1',
    status: 'TRADING',
    makerFee: '0.001',
    takerFee: '0.002',
    priceBand: '0.1',
    ...over,
  };
}

describe('what a status allows', () => {
  it('takes everything while trading', () => {
    expect(acceptsOrders('TRADING')).toBe(true);
    expect(acceptsAmends('TRADING')).toBe(true);
    expect(acceptsCancels('TRADING')).toBe(true);
  });

  it('takes only cancels when cancel-only', () => {
    expect(acceptsOrders('CANCEL_ONLY')).toBe(false);
    expect(acceptsAmends('CANCEL_ONLY')).toBe(false);
    expect(acceptsCancels('CANCEL_ONLY')).toBe(true);
  });

  it('takes nothing when halted', () => {
    expect(acceptsOrders('HALTED')).toBe(false);
    expect(acceptsAmends('HALTED')).toBe(false);
    expect(acceptsCancels('HALTED')).toBe(false);
  });

  it('keeps cancels, and only cancels, for a status it does not know', () => {
    expect(acceptsOrders('AUCTION')).toBe(false);
    expect(acceptsAmends('AUCTION')).toBe(false);
    expect(acceptsCancels('AUCTION')).toBe(true);
  });
});

describe('status words', () => {
  it('writes the status as words', () => {
    expect(statusText('HALTED')).toBe('HALTED');
    expect(statusText('CANCEL_ONLY')).toBe('CANCEL ONLY');
  });

  it('marks a symbol that is not trading in the selector', () => {
    expect(symbolOptionText(inst('BTC/USD'))).toBe('BTC/USD');
    expect(symbolOptionText(inst('SOL/USD', { status: 'HALTED' }))).toBe('SOL/USD · HALTED');
    expect(symbolOptionText(inst('ETH/USD', { status: 'CANCEL_ONLY' }))).toBe('ETH/USD · CANCEL ONLY');
  });

  it('says why an amend is disabled', () => {
    expect(amendRefusedReason(inst('BTC/USD'))).toBeNull();
    expect(amendRefusedReason(inst('BTC/USD', { status: 'CANCEL_ONLY' }))).toBe(
      'BTC/USD is CANCEL_ONLY: amends are refused',
    );
    expect(amendRefusedReason(inst('BTC/USD', { status: 'HALTED' }))).toBe('BTC/USD is HALTED: amends are refused');
  });

  it('says why a cancel is disabled, only when halted', () => {
    expect(cancelRefusedReason(inst('BTC/USD'))).toBeNull();
    expect(cancelRefusedReason(inst('BTC/USD', { status: 'CANCEL_ONLY' }))).toBeNull();
    expect(cancelRefusedReason(inst('BTC/USD', { status: 'HALTED' }))).toBe('BTC/USD is HALTED: cancels are refused');
  });

  it('tells a list never read from one not refreshed', () => {
    expect(instrumentsFailedText('Service unavailable', false)).toBe('Instruments unavailable: Service unavailable');
    expect(instrumentsFailedText('Failed to fetch', true)).toBe(
      'Instrument statuses not refreshed: Failed to fetch (the last ones read are shown)',
    );
  });
});

describe('merging a read of the list', () => {
  const list = [inst('BTC/USD'), inst('ETH/USD'), inst('SOL/USD', { tickSize: '0.001' })];
  const copy = () => list.map((i) => ({ ...i }));

  it('keeps the list shown when nothing changed', () => {
    expect(mergeInstruments(list, copy())).toBe(list);
    expect(mergeInstruments([], [])).toEqual([]);
  });

  it('takes the first read', () => {
    const first = copy();
    expect(mergeInstruments([], first)).toEqual(list);
  });

  it('takes a changed status and keeps the unchanged instruments as they were', () => {
    const read = copy();
    read[2].status = 'HALTED';
    const merged = mergeInstruments(list, read);
    expect(merged).not.toBe(list);
    expect(merged[0]).toBe(list[0]);
    expect(merged[1]).toBe(list[1]);
    expect(merged[2]).toBe(read[2]);
    expect(merged[2].status).toBe('HALTED');
  });

  it('takes any other changed field', () => {
    const read = copy();
    read[0].tickSize = '0.1';
    expect(mergeInstruments(list, read)[0].tickSize).toBe('0.1');
  });

  it('takes a field the page does not know yet', () => {
    const read = copy();
    (read[1] as Instrument & { extra?: string }).extra = 'x';
    expect(mergeInstruments(list, read)[1]).toBe(read[1]);
  });

  it('takes added, removed and reordered instruments', () => {
    const added = [...copy(), inst('ETH/BTC')];
    expect(mergeInstruments(list, added).map((i) => i.symbol)).toEqual(['BTC/USD', 'ETH/USD', 'SOL/USD', 'ETH/BTC']);
    const removed = copy().slice(1);
    expect(mergeInstruments(list, removed).map((i) => i.symbol)).toEqual(['ETH/USD', 'SOL/USD']);
    const reordered = copy().reverse();
    const merged = mergeInstruments(list, reordered);
    expect(merged).not.toBe(list);
    expect(merged.map((i) => i.symbol)).toEqual(['SOL/USD', 'ETH/USD', 'BTC/USD']);
    expect(merged[0]).toBe(list[2]);
  });
});
