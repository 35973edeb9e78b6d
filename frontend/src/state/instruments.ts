// Keeps the page's instrument list current. GET /api/instruments gives the filters and a status;
// after that, each symbol's `status:{symbol}` channel says what is in force (its first message)
// and every change the moment the venue takes it, well before GET /api/instruments would show it.
// So the list is read once, and never polled.
import { ApiError, errorText } from '../api/http';
import type { MarketSocket } from '../api/socket';
import type { Instrument } from '../api/types';
import { applyStatusMessage, instrumentsFailedText, statusChannel } from '../lib/instruments';
import { dismiss, notify } from './notices';

export interface WatchInstrumentsOptions {
  /** Status channels are subscribed on it; it subscribes them again after each reconnect. */
  socket: Pick<MarketSocket, 'subscribe' | 'onBatch'>;
  /** The read of the list (perhaps already under way). */
  load: () => Promise<Instrument[]>;
  /** The list once read, then again each time a pushed status changes it. */
  onList: (list: Instrument[]) => void;
  /** Wait before retrying a failed read; doubles per failure up to `maxRetryMs`. */
  retryMs?: number;
  maxRetryMs?: number;
}

/**
 * Reads the instruments, then subscribes to the status of each and applies every status message
 * to the list. A failed read is retried with backoff, under one notice that stays until a read
 * succeeds. Returns the stopper.
 */
export function watchInstruments(o: WatchInstrumentsOptions): () => void {
  const maxRetry = o.maxRetryMs ?? 30_000;
  let retry = o.retryMs ?? 1_000;
  let stopped = false;
  let list: Instrument[] | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let notice: number | null = null;
  let releases: (() => void)[] = [];

  const offBatch = o.socket.onBatch((batch) => {
    if (!list) return;
    const next = batch.reduce(applyStatusMessage, list);
    if (next === list) return;
    list = next;
    o.onList(next);
  });

  const read = () => {
    timer = null;
    o.load().then(
      (fresh) => {
        if (stopped) return;
        if (notice !== null) dismiss(notice);
        notice = null;
        list = fresh;
        o.onList(fresh);
        releases = fresh.map((i) => o.socket.subscribe(statusChannel(i.symbol)));
      },
      (e: unknown) => {
        if (stopped) return;
        // A 401 signs the page out, which stops this: there is nothing to tell.
        if (notice === null && !(e instanceof ApiError && e.status === 401)) {
          notice = notify('error', instrumentsFailedText(errorText(e)));
        }
        timer = setTimeout(read, retry);
        retry = Math.min(retry * 2, maxRetry);
      },
    );
  };
  read();

  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    if (notice !== null) dismiss(notice);
    offBatch();
    for (const release of releases) release();
    releases = [];
  };
}
