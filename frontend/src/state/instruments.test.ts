import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../api/http';
import type { Instrument } from '../api/types';
import { INSTRUMENTS_POLL_MS } from '../lib/instruments';
import { type Visibility, watchInstruments } from './instruments';
import { clearNotices, notices } from './notices';

const BTC = { symbol: 'BTC/USD', status: 'TRADING' } as Instrument;
const HALTED_BTC = { symbol: 'BTC/USD', status: 'HALTED' } as Instrument;

/** A page whose visibility the test sets. */
function page(): Visibility & { show(shown: boolean): void } {
  let hidden = false;
  const listeners = new Set<() => void>();
  return {
    hidden: () => hidden,
    onChange: (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    show(shown) {
      hidden = !shown;
      for (const l of listeners) l();
    },
  };
}

describe('watching the instruments', () => {
  let first: ReturnType<typeof vi.fn<() => Promise<Instrument[]>>>;
  let next: ReturnType<typeof vi.fn<(signal: AbortSignal) => Promise<Instrument[]>>>;
  let lists: Instrument[][];
  let visibility: ReturnType<typeof page>;
  let stop: () => void;

  const start = () => {
    stop = watchInstruments({ first, next, onList: (l) => lists.push(l), visibility });
  };
  const errorTexts = () => notices.get().map((n) => `${n.kind}: ${n.text}`);

  beforeEach(() => {
    vi.useFakeTimers();
    clearNotices();
    first = vi.fn(async () => [BTC]);
    next = vi.fn(async () => [BTC]);
    lists = [];
    visibility = page();
    stop = () => undefined;
  });

  afterEach(() => {
    stop();
    clearNotices();
    vi.useRealTimers();
  });

  it('reads the page list at once, then a fresh one every period', async () => {
    start();
    await vi.advanceTimersByTimeAsync(0);
    expect(first).toHaveBeenCalledTimes(1);
    expect(next).not.toHaveBeenCalled();
    expect(lists).toEqual([[BTC]]);

    next.mockResolvedValueOnce([HALTED_BTC]);
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS - 1);
    expect(next).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(next).toHaveBeenCalledTimes(1);
    expect(lists).toEqual([[BTC], [HALTED_BTC]]);
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS * 3);
    expect(next).toHaveBeenCalledTimes(4);
    expect(first).toHaveBeenCalledTimes(1);
  });

  it('sends no second read while one is under way', async () => {
    let answer: (l: Instrument[]) => void = () => undefined;
    start();
    await vi.advanceTimersByTimeAsync(0);
    next.mockImplementationOnce(() => new Promise((r) => (answer = r)));
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS * 4);
    expect(next).toHaveBeenCalledTimes(1);
    answer([HALTED_BTC]);
    await vi.advanceTimersByTimeAsync(0);
    expect(lists.at(-1)).toEqual([HALTED_BTC]);
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS);
    expect(next).toHaveBeenCalledTimes(2);
  });

  it('stops reading, and cancels the read under way, once stopped', async () => {
    let signal: AbortSignal | null = null;
    start();
    await vi.advanceTimersByTimeAsync(0);
    next.mockImplementationOnce((s) => {
      signal = s;
      return new Promise(() => undefined);
    });
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS);
    expect(signal!.aborted).toBe(false);
    stop();
    expect(signal!.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS * 3);
    expect(next).toHaveBeenCalledTimes(1);
  });

  it('ignores a read that ends after the stop', async () => {
    let answer: (l: Instrument[]) => void = () => undefined;
    first.mockImplementationOnce(() => new Promise((r) => (answer = r)));
    start();
    stop();
    answer([BTC]);
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS * 2);
    expect(lists).toEqual([]);
    expect(next).not.toHaveBeenCalled();
  });

  it('pauses while the page is hidden and reads again when it is shown', async () => {
    start();
    await vi.advanceTimersByTimeAsync(0);
    visibility.show(false);
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS * 5);
    expect(next).not.toHaveBeenCalled();
    // Shown after a long time: the list may be stale, so it is read at once.
    visibility.show(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(next).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS);
    expect(next).toHaveBeenCalledTimes(2);
  });

  it('shown again soon, keeps to the period', async () => {
    start();
    await vi.advanceTimersByTimeAsync(1_000);
    visibility.show(false);
    await vi.advanceTimersByTimeAsync(1_000);
    visibility.show(true);
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS - 2_001);
    expect(next).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(next).toHaveBeenCalledTimes(1);
  });

  it('keeps the last list on a failed read, tells once, and takes the notice away once a read succeeds', async () => {
    start();
    await vi.advanceTimersByTimeAsync(0);
    next.mockRejectedValueOnce(new ApiError(503, { title: 'Service unavailable', status: 503 }));
    next.mockRejectedValueOnce(new TypeError('Failed to fetch'));
    next.mockRejectedValueOnce(new ApiError(500, { title: 'Internal error', status: 500 }));
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS * 3);
    expect(next).toHaveBeenCalledTimes(3);
    expect(lists).toEqual([[BTC]]);
    expect(errorTexts()).toEqual([
      'error: Instrument statuses not refreshed: Service unavailable (the last ones read are shown)',
    ]);
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS);
    expect(lists).toEqual([[BTC], [BTC]]);
    expect(errorTexts()).toEqual([]);
  });

  it('keeps reading after a failed first read, and shows the list once one succeeds', async () => {
    first.mockRejectedValueOnce(new TypeError('Failed to fetch'));
    start();
    await vi.advanceTimersByTimeAsync(0);
    expect(errorTexts()).toEqual(['error: Instruments unavailable: Failed to fetch']);
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS);
    // Not read yet: the page's own list is asked for again.
    expect(first).toHaveBeenCalledTimes(2);
    expect(next).not.toHaveBeenCalled();
    expect(lists).toEqual([[BTC]]);
    expect(errorTexts()).toEqual([]);
  });

  it('tells nothing of a 401: the page signs out', async () => {
    start();
    await vi.advanceTimersByTimeAsync(0);
    next.mockRejectedValueOnce(new ApiError(401, { title: 'Unauthorized', status: 401 }));
    await vi.advanceTimersByTimeAsync(INSTRUMENTS_POLL_MS);
    expect(next).toHaveBeenCalledTimes(1);
    expect(errorTexts()).toEqual([]);
  });
});
