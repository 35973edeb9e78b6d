import { useEffect, useState } from 'react';

/** How long a two-click action waits for its confirming second click. */
export const CONFIRM_MS = 4000;

/**
 * The armed state of an action that takes two clicks (cancel all, the kill switch off): the
 * first click arms it, and it disarms itself after `CONFIRM_MS` without a second.
 */
export function useArmed(): [boolean, (armed: boolean) => void] {
  const [armed, setArmed] = useState(false);
  useEffect(() => {
    if (!armed) return;
    const timer = setTimeout(() => setArmed(false), CONFIRM_MS);
    return () => clearTimeout(timer);
  }, [armed]);
  return [armed, setArmed];
}
