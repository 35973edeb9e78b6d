import { useCallback, useEffect, useState } from 'react';
import { api, errorText, setUnauthorizedHandler } from './api/http';
import type { Session } from './api/types';
import { Banner } from './components/Banner';
import { SignIn } from './components/SignIn';
import { TradingScreen } from './components/TradingScreen';
import { notify } from './state/notices';

// Whether this browser signed in before. It holds no secret (the session is an HttpOnly cookie):
// it only spares a signed-out visitor a GET /api/session that would answer 401.
const SIGNED_IN_HINT = 'oms.signedIn';

type Auth = { state: 'checking' } | { state: 'signed-out' } | { state: 'signed-in'; session: Session };

export function App() {
  const [auth, setAuth] = useState<Auth>(() =>
    localStorage.getItem(SIGNED_IN_HINT) ? { state: 'checking' } : { state: 'signed-out' },
  );

  const signedOut = useCallback(() => {
    localStorage.removeItem(SIGNED_IN_HINT);
    setAuth({ state: 'signed-out' });
  }, []);

  const check = useCallback(() => {
    api.session().then((session) => {
      localStorage.setItem(SIGNED_IN_HINT, '1');
      setAuth({ state: 'signed-in', session });
    }, signedOut);
  }, [signedOut]);

  useEffect(() => {
    if (localStorage.getItem(SIGNED_IN_HINT)) check();
    // An expired or revoked session on any request returns to the sign-in form.
    setUnauthorizedHandler(signedOut);
    return () => setUnauthorizedHandler(null);
  }, [check, signedOut]);

  const signOut = useCallback(() => {
    api.signOut().then(signedOut, (e) => notify('error', `Sign out failed: ${errorText(e)}`));
  }, [signedOut]);

  if (auth.state === 'checking') return <div className="boot" aria-busy="true" />;
  if (auth.state === 'signed-out')
    return (
      <>
        <Banner />
        <SignIn onSignedIn={check} />
      </>
    );
  return <TradingScreen session={auth.session} onSignOut={signOut} />;
}
