import { describe, expect, it } from 'vitest';
import type { Side } from '../api/types';
import { cancelAllButton, cancelAllScope, cancelRequestedText, haltedNote } from './cancelAll';

const statuses = new Map(
  Object.entries({ 'BTC/USD': 'TRADING', 'ETH/USD': 'CANCEL_ONLY', 'SOL/USD': 'HALTED', 'ADA/USD': 'HALTED' }).map(
    ([symbol, status]) => [symbol, { status }],
  ),
);
const order = (symbol: string, side: Side = 'BUY') => ({ symbol, side });

describe('cancel all', () => {
  it('names what it covers at rest', () => {
    expect(cancelAllButton({}, 3, false)).toEqual({ text: 'Cancel all', label: 'Cancel all open orders' });
    expect(cancelAllButton({ symbol: 'BTC/USD' }, 3, false).label).toBe('Cancel all open BTC/USD orders');
    expect(cancelAllButton({ side: 'SELL' }, 3, false).label).toBe('Cancel all open sell orders');
    expect(cancelAllButton({ symbol: 'ETH/USD', side: 'BUY' }, 3, false).label).toBe(
      'Cancel all open ETH/USD buy orders',
    );
  });

  it('states the count while it waits for the confirmation', () => {
    expect(cancelAllButton({}, 3, true)).toEqual({
      text: 'Confirm cancel all (3)',
      label: 'Confirm: cancel 3 open orders',
    });
    expect(cancelAllButton({ symbol: 'BTC/USD' }, 1, true)).toEqual({
      text: 'Confirm cancel all (1)',
      label: 'Confirm: cancel 1 open BTC/USD order',
    });
  });

  it('reports how many cancels were requested', () => {
    expect(cancelRequestedText({ count: 2, left: 0, halted: [] })).toBe('Cancel requested for 2 orders');
    expect(cancelRequestedText({ count: 1, left: 0, halted: [] })).toBe('Cancel requested for 1 order');
    expect(cancelRequestedText({ count: 0, left: 0, halted: [] })).toBe('Cancel requested for 0 orders');
  });
});

describe('cancel all while a symbol is halted', () => {
  it('covers every open order when nothing is halted (cancel-only still takes cancels)', () => {
    const open = [order('BTC/USD'), order('ETH/USD'), order('BTC/USD', 'SELL')];
    expect(cancelAllScope({}, open, statuses)).toEqual({ count: 3, left: 0, halted: [], refused: null });
    expect(haltedNote({ left: 0, halted: [] })).toBeNull();
  });

  it('across symbols, leaves out the orders on halted symbols and names those symbols', () => {
    const open = [order('BTC/USD'), order('SOL/USD'), order('ETH/USD'), order('ADA/USD'), order('SOL/USD', 'SELL')];
    const s = cancelAllScope({}, open, statuses);
    expect(s).toEqual({ count: 2, left: 3, halted: ['ADA/USD', 'SOL/USD'], refused: null });
    expect(haltedNote(s)).toBe('3 orders on halted ADA/USD and SOL/USD will not be cancelled');
    expect(cancelRequestedText(s)).toBe(
      'Cancel requested for 2 orders; 3 orders on halted ADA/USD and SOL/USD will not be cancelled',
    );
    const one = cancelAllScope({}, [order('BTC/USD'), order('SOL/USD')], statuses);
    expect(cancelRequestedText(one)).toBe(
      'Cancel requested for 1 order; 1 order on halted SOL/USD will not be cancelled',
    );
  });

  it('is refused when every order it covers is on a halted symbol', () => {
    expect(cancelAllScope({}, [order('SOL/USD'), order('SOL/USD')], statuses)).toEqual({
      count: 0,
      left: 2,
      halted: ['SOL/USD'],
      refused: 'SOL/USD is halted: cancels are refused',
    });
    expect(cancelAllScope({}, [order('SOL/USD'), order('ADA/USD')], statuses).refused).toBe(
      'ADA/USD and SOL/USD are halted: cancels are refused',
    );
  });

  it('scoped to a halted symbol, is refused whatever is open', () => {
    const open = [order('BTC/USD'), order('SOL/USD')];
    expect(cancelAllScope({ symbol: 'SOL/USD' }, open, statuses)).toEqual({
      count: 0,
      left: 1,
      halted: ['SOL/USD'],
      refused: 'SOL/USD is halted: cancels are refused',
    });
    expect(cancelAllScope({ symbol: 'SOL/USD' }, [], statuses).refused).toBe('SOL/USD is halted: cancels are refused');
    // Scoped to a symbol that trades, the halted one is none of its business.
    expect(cancelAllScope({ symbol: 'BTC/USD' }, open, statuses)).toEqual({
      count: 1,
      left: 0,
      halted: [],
      refused: null,
    });
  });

  it('counts only the side it covers', () => {
    const open = [order('BTC/USD', 'SELL'), order('SOL/USD', 'SELL'), order('SOL/USD', 'BUY'), order('BTC/USD')];
    expect(cancelAllScope({ side: 'SELL' }, open, statuses)).toEqual({
      count: 1,
      left: 1,
      halted: ['SOL/USD'],
      refused: null,
    });
    expect(cancelAllScope({ side: 'BUY' }, [order('SOL/USD', 'SELL'), order('BTC/USD')], statuses).left).toBe(0);
  });

  it('takes an order of a symbol it has no status for as cancellable', () => {
    expect(cancelAllScope({}, [order('XRP/USD')], statuses)).toEqual({ count: 1, left: 0, halted: [], refused: null });
  });
});
