// Keeps the page's instrument list current: an operator can halt a symbol while the dashboard
// is open, and GET /api/instruments is the only place that says so. The list is read once, then
// every INSTRUMENTS_POLL_MS while the page is visible.
import { ApiError, errorText } from '../api/http';
import type { Instrument } from '../api/types';
import { INSTRUMENTS_POLL_MS, instrumentsFailedText } from '../lib/instruments';
import { dismiss, notify } from './notices';

/** Whether the page is shown, and word of when that changes. */
export interface Visibility {
  hidden(): boolean;
  onChange(fn: () => void): () => void;
}

/** The document's visibility; always visible where there is no document. */
export function documentVisibility(): Visibility {
  if (typeof document === 'undefined') return { hidden: () => false, onChange: () => () => undefined };
  return {
    hidden: () => document.visibilityState === 'hidden',
    onChange: (fn) => {
      document.addEventListener('visibilitychange', fn);
      return () => document.removeEventListener('visibilitychange', fn);
    },
  };
}

export interface WatchInstrumentsOptions {
  /** The first read: the page's list, fetched once and perhaps already under way. */
  first: () => Promise<Instrument[]>;
  /** Every later read. */
  next: (signal: AbortSignal) => Promise<Instrument[]>;
  /** Each list read, changed or not (`mergeInstruments` tells). */
  onList: (list: Instrument[]) => void;
  everyMs?: number;
  visibility?: Visibility;
}

/**
 * Reads the instruments now, then `everyMs` after each read ends while the page is visible; a
 * page shown again reads at once if its last read is older than that. A failed read keeps the
 * list shown and raises one notice, which stays (however many reads fail) until one succeeds
 * and takes it away. Returns the stopper.
 */
export function watchInstruments(o: WatchInstrumentsOptions): () => void {
  const every = o.everyMs ?? INSTRUMENTS_POLL_MS;
  const visibility = o.visibility ?? documentVisibility();
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let inFlight: AbortController | null = null;
  let lastRead = 0;
  let known = false;
  let failing = false;
  let notice: number | null = null;

  const clear = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };

  const schedule = (wait: number) => {
    clear();
    if (stopped || inFlight || visibility.hidden()) return;
    timer = setTimeout(read, wait);
  };

  function read() {
    clear();
    if (stopped || inFlight) return;
    const ctl = new AbortController();
    inFlight = ctl;
    lastRead = Date.now();
    (known ? o.next(ctl.signal) : o.first())
      .then(
        (list) => {
          if (stopped) return;
          known = true;
          failing = false;
          if (notice !== null) dismiss(notice);
          notice = null;
          o.onList(list);
        },
        (e: unknown) => {
          if (stopped || failing) return;
          failing = true;
          // A 401 signs the page out, which stops this: there is nothing to tell.
          if (e instanceof ApiError && e.status === 401) return;
          notice = notify('error', instrumentsFailedText(errorText(e), known));
        },
      )
      .finally(() => {
        if (inFlight === ctl) inFlight = null;
        schedule(every);
      });
  }

  const offVisibility = visibility.onChange(() => {
    if (visibility.hidden()) clear();
    else schedule(Math.max(0, lastRead + every - Date.now()));
  });
  read();

  return () => {
    stopped = true;
    clear();
    offVisibility();
    inFlight?.abort();
  };
}
