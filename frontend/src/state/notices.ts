// Messages for the banner: errors that belong to no form field, and short confirmations.
import { Store } from './store';

export interface Notice {
  id: number;
  kind: 'error' | 'info';
  text: string;
}

let nextId = 1;
export const notices = new Store<Notice[]>([]);

/** Shows a message; answers its id (the one already shown, for a repeated message). */
export function notify(kind: Notice['kind'], text: string, ttlMs = kind === 'info' ? 4000 : 0): number {
  // The same message twice (a repeating server error) is shown once.
  const shown = notices.get().find((n) => n.text === text);
  if (shown) return shown.id;
  const id = nextId++;
  notices.update((list) => [...list.slice(-4), { id, kind, text }]);
  if (ttlMs > 0) setTimeout(() => dismiss(id), ttlMs);
  return id;
}

export function dismiss(id: number): void {
  notices.update((list) => list.filter((n) => n.id !== id));
}

/** Forgets every notice: they belong to the session that raised them, not to the next one. */
export function clearNotices(): void {
  notices.update(() => []);
}
