import { describe, expect, it } from 'vitest';
import type { Instrument } from '../api/types';
import {
  acceptsAmends,
  acceptsCancels,
  acceptsOrders,
  amendRefusedReason,
  applyStatusMessage,
  cancelRefusedReason,
  instrumentsFailedText,
  statusChannel,
  statusText,
  symbolOptionText,
  ticketRefusedText,
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
    expect(statusText('TRADING')).toBe('Trading');
    expect(statusText('CANCEL_ONLY')).toBe('Cancel only');
    expect(statusText('HALTED')).toBe('Halted');
    expect(statusText('PRE_OPEN_AUCTION')).toBe('Pre open auction');
  });

  it('marks a symbol that is not trading in the selector', () => {
    expect(symbolOptionText(inst('BTC/USD'))).toBe('BTC/USD');
    expect(symbolOptionText(inst('SOL/USD', { status: 'HALTED' }))).toBe('SOL/USD · Halted');
    expect(symbolOptionText(inst('ETH/USD', { status: 'CANCEL_ONLY' }))).toBe('ETH/USD · Cancel only');
  });

  it('says why the ticket sends nothing', () => {
    expect(ticketRefusedText(inst('SOL/USD', { status: 'HALTED' }))).toBe('SOL/USD is halted: new orders are refused.');
    expect(ticketRefusedText(inst('SOL/USD', { status: 'CANCEL_ONLY' }))).toBe(
      'SOL/USD is cancel only: new orders are refused.',
    );
  });

  it('says why an amend is disabled', () => {
    expect(amendRefusedReason(inst('BTC/USD'))).toBeNull();
    expect(amendRefusedReason(inst('BTC/USD', { status: 'CANCEL_ONLY' }))).toBe(
      'BTC/USD is cancel only: amends are refused',
    );
    expect(amendRefusedReason(inst('BTC/USD', { status: 'HALTED' }))).toBe('BTC/USD is halted: amends are refused');
  });

  it('says why a cancel is disabled, only when halted', () => {
    expect(cancelRefusedReason(inst('BTC/USD'))).toBeNull();
    expect(cancelRefusedReason(inst('BTC/USD', { status: 'CANCEL_ONLY' }))).toBeNull();
    expect(cancelRefusedReason(inst('BTC/USD', { status: 'HALTED' }))).toBe('BTC/USD is halted: cancels are refused');
  });

  it('tells that the list is unavailable', () => {
    expect(instrumentsFailedText('Service unavailable')).toBe(
      'Instruments unavailable: Service unavailable (retrying)',
    );
  });
});

describe('a pushed status', () => {
  const list = [inst('BTC/USD'), inst('ETH/USD'), inst('SOL/USD', { tickSize: '0.001' })];
  const msg = (channel: string, data: unknown) => ({ channel, seq: 3, data });
  const halted = (symbol: string) => msg(statusChannel(symbol), { symbol, status: 'HALTED', since: 1764057600000 });

  it('is on the channel named after the symbol', () => {
    expect(statusChannel('BTC/USD')).toBe('status:BTC/USD');
  });

  it("changes that instrument's status only, keeping the other instruments as they were", () => {
    const next = applyStatusMessage(list, halted('SOL/USD'));
    expect(next).not.toBe(list);
    expect(next[0]).toBe(list[0]);
    expect(next[1]).toBe(list[1]);
    expect(next[2]).toEqual({ ...list[2], status: 'HALTED' });
    expect(list[2].status).toBe('TRADING');
  });

  it('takes a status the page does not know (it then keeps only cancels)', () => {
    const next = applyStatusMessage(list, msg('status:BTC/USD', { symbol: 'BTC/USD', status: 'AUCTION' }));
    expect(next[0].status).toBe('AUCTION');
  });

  it('keeps the same list when it changes nothing or is not about the list', () => {
    for (const m of [
      msg('status:BTC/USD', { symbol: 'BTC/USD', status: 'TRADING' }),
      halted('DOGE/USD'),
      msg('ticker:BTC/USD', { symbol: 'BTC/USD', status: 'HALTED' }),
      msg('status:BTC/USD', { symbol: 'ETH/USD', status: 'HALTED' }),
      msg('status:BTC/USD', { symbol: 'BTC/USD', status: '' }),
      msg('status:BTC/USD', { symbol: 'BTC/USD', status: 1 }),
      msg('status:BTC/USD', { symbol: 'BTC/USD' }),
      msg('status:BTC/USD', null),
      msg('status:BTC/USD', 'HALTED'),
    ]) {
      expect(applyStatusMessage(list, m)).toBe(list);
    }
  });
});
