import { describe, expect, it } from 'vitest';
import { cancelAllButton, cancelRequestedText } from './cancelAll';

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
    expect(cancelRequestedText(2)).toBe('Cancel requested for 2 orders');
    expect(cancelRequestedText(1)).toBe('Cancel requested for 1 order');
    expect(cancelRequestedText(0)).toBe('Cancel requested for 0 orders');
  });
});
