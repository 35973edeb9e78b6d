import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { loadInstruments } from './api/http';
import { App } from './App';
import './styles.css';

// A returning user lands on the trading screen: fetch the chart's chunk and the instruments
// while the session is being checked rather than after.
if (localStorage.getItem('oms.signedIn')) {
  void import('./components/PriceChart');
  loadInstruments().catch(() => undefined);
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
