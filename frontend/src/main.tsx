import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import './styles.css';

// A returning user lands on the trading screen: fetch the chart's chunk while the session is
// being checked rather than after.
if (localStorage.getItem('oms.signedIn')) void import('./components/PriceChart');

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
