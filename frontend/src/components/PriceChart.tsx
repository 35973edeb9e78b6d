// Candlestick + volume chart of one symbol and interval. History comes from the REST candles
// endpoint (older pages when the user scrolls back), the current bucket from the WebSocket
// candles channel. The chart is driven imperatively: live candles never re-render React.
import {
  CandlestickSeries,
  ColorType,
  createChart,
  CrosshairMode,
  HistogramSeries,
  type IChartApi,
  type CandlestickData,
  type HistogramData,
  type ISeriesApi,
  type LogicalRange,
  type MouseEventParams,
  type Time,
  TickMarkType,
} from 'lightweight-charts';
import { useEffect, useRef, useState } from 'react';
import { api, errorText } from '../api/http';
import type { MarketSocket } from '../api/socket';
import type { Candle, Instrument, Interval } from '../api/types';
import { DOWN_COLOR, mergeCandle, prependHistory, toChartBar, toVolumeBar, UP_COLOR } from '../lib/candles';
import { decimalsOf, formatCompact, formatDateTime, formatPrice, formatTime } from '../lib/format';

const PAGE = 500;
/** Load an older page when fewer than this many bars are left of the visible range. */
const PREFETCH_BARS = 20;

// The chart's time type is a branded number (seconds); the candle helpers produce plain ones.
const bar = (c: Candle) => toChartBar(c) as unknown as CandlestickData<Time>;
const vol = (c: Candle) => toVolumeBar(c) as unknown as HistogramData<Time>;

// The chart's axis and crosshair in local time, like the rest of the screen (bars are UTC).
const pad = (n: number) => String(n).padStart(2, '0');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function tickMark(time: Time, type: TickMarkType): string {
  const d = new Date((time as number) * 1000);
  switch (type) {
    case TickMarkType.Year:
      return String(d.getFullYear());
    case TickMarkType.Month:
      return MONTHS[d.getMonth()];
    case TickMarkType.DayOfMonth:
      return String(d.getDate());
    case TickMarkType.Time:
      return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    default:
      return formatTime(d.getTime());
  }
}

const crosshairTime = (time: Time): string => formatDateTime((time as number) * 1000);

interface Props {
  socket: MarketSocket;
  instrument: Instrument;
  interval: Interval;
}

export default function PriceChart({ socket, instrument, interval }: Props) {
  const hostRef = useRef<HTMLDivElement>(null);
  const legendRef = useRef<HTMLDivElement>(null);
  const chartRef = useRef<{
    chart: IChartApi;
    candles: ISeriesApi<'Candlestick'>;
    volume: ISeriesApi<'Histogram'>;
  } | null>(null);
  const [status, setStatus] = useState<'loading' | 'ready' | 'empty' | 'error'>('loading');
  const [error, setError] = useState('');
  const [loadingOlder, setLoadingOlder] = useState(false);

  useEffect(() => {
    const host = hostRef.current!;
    const chart = createChart(host, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: 'transparent' },
        textColor: '#8b949e',
        fontSize: 11,
        fontFamily: 'inherit',
      },
      grid: { vertLines: { color: '#1c2330' }, horzLines: { color: '#1c2330' } },
      rightPriceScale: { borderColor: '#2a3140' },
      timeScale: { borderColor: '#2a3140', timeVisible: true, rightOffset: 4, tickMarkFormatter: tickMark },
      localization: { timeFormatter: crosshairTime },
      crosshair: { mode: CrosshairMode.Normal },
    });
    const candles = chart.addSeries(CandlestickSeries, {
      upColor: UP_COLOR,
      downColor: DOWN_COLOR,
      borderVisible: false,
      wickUpColor: UP_COLOR,
      wickDownColor: DOWN_COLOR,
    });
    candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.25 } });
    const volume = chart.addSeries(HistogramSeries, { priceScaleId: '', priceFormat: { type: 'volume' } });
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    chartRef.current = { chart, candles, volume };
    return () => {
      chartRef.current = null;
      chart.remove();
    };
  }, []);

  // Only what the chart draws with: a change of the instrument's trading status (pushed at any
  // time) must not reload its candles.
  const { symbol, tickSize } = instrument;
  useEffect(() => {
    const c = chartRef.current!;
    const host = hostRef.current!;
    const channel = `candles:${symbol}:${interval}`;
    const precision = decimalsOf(tickSize);
    c.candles.applyOptions({ priceFormat: { type: 'price', precision, minMove: Number(tickSize) } });
    c.chart.applyOptions({ timeScale: { secondsVisible: interval === '1s' } });
    c.candles.setData([]);
    c.volume.setData([]);
    setStatus('loading');
    setLoadingOlder(false);

    let series: Candle[] = [];
    let ready = false;
    let pending: Candle[] = [];
    let olderInFlight = false;
    let exhausted = false;
    let hovered: Candle | null = null;
    let cancelled = false;

    const legend = (cd: Candle | undefined) => {
      const el = legendRef.current;
      if (!el) return;
      if (!cd) {
        el.textContent = '';
        return;
      }
      const up = +cd.close >= +cd.open;
      el.dataset.dir = up ? 'up' : 'down';
      el.textContent =
        `O ${formatPrice(cd.open, tickSize)}  H ${formatPrice(cd.high, tickSize)}  ` +
        `L ${formatPrice(cd.low, tickSize)}  C ${formatPrice(cd.close, tickSize)}  V ${formatCompact(cd.volume)}`;
    };

    // Figures of the newest candle, read by the browser tests and shown in the legend.
    const publishLast = () => {
      const last = series[series.length - 1];
      host.dataset.candles = String(series.length);
      host.dataset.lastOpenTime = last ? String(last.openTime) : '';
      host.dataset.lastClose = last?.close ?? '';
      host.dataset.lastVolume = last?.volume ?? '';
      host.dataset.lastTrades = last ? String(last.trades) : '';
      if (!hovered) legend(last);
    };

    const setAll = () => {
      c.candles.setData(series.map(bar));
      c.volume.setData(series.map(vol));
      publishLast();
    };

    const apply = (cd: Candle) => {
      const kind = mergeCandle(series, cd);
      if (kind === 'ignore') return;
      if ((kind === 'append' || kind === 'replace') && series[series.length - 1] === cd) {
        c.candles.update(bar(cd));
        c.volume.update(vol(cd));
        publishLast();
      } else {
        setAll();
      }
      if (series.length === 1) setStatus('ready');
    };

    const loadLatest = (first: boolean) =>
      api.candles(symbol, interval, { limit: PAGE }).then(
        (page) => {
          if (cancelled) return;
          if (first) {
            series = page.slice();
            for (const p of pending) mergeCandle(series, p);
            pending = [];
            ready = true;
          } else {
            for (const p of page) mergeCandle(series, p);
          }
          setAll();
          if (first && series.length) {
            c.chart.timeScale().scrollToRealTime();
            performance.mark('oms:chart-ready');
          }
          setStatus(series.length ? 'ready' : 'empty');
        },
        (e) => {
          if (cancelled) return;
          ready = true;
          setError(errorText(e));
          setStatus('error');
        },
      );

    const onRange = (range: LogicalRange | null) => {
      if (!range || !ready || olderInFlight || exhausted || series.length === 0) return;
      if (range.from > PREFETCH_BARS) return;
      olderInFlight = true;
      setLoadingOlder(true);
      const before = series[0].openTime;
      api.candles(symbol, interval, { to: before, limit: PAGE }).then(
        (older) => {
          if (cancelled) return;
          olderInFlight = false;
          setLoadingOlder(false);
          const merged = prependHistory(series, older);
          if (merged === series) {
            exhausted = true;
            return;
          }
          series = merged;
          setAll();
        },
        () => {
          if (cancelled) return;
          olderInFlight = false;
          setLoadingOlder(false);
        },
      );
    };

    const onCrosshair = (p: MouseEventParams<Time>) => {
      if (p.time === undefined) {
        hovered = null;
        legend(series[series.length - 1]);
        return;
      }
      const t = (p.time as number) * 1000;
      hovered = series.find((x) => x.openTime === t) ?? null;
      legend(hovered ?? series[series.length - 1]);
    };

    const offBatch = socket.onBatch((batch) => {
      for (const m of batch) {
        if (m.channel !== channel) continue;
        const cd = m.data as Candle;
        if (ready) apply(cd);
        else pending.push(cd);
      }
    });
    const offOpen = socket.onOpen((reconnected) => {
      if (reconnected && ready) void loadLatest(false);
    });
    const release = socket.subscribe(channel);
    c.chart.timeScale().subscribeVisibleLogicalRangeChange(onRange);
    c.chart.subscribeCrosshairMove(onCrosshair);
    void loadLatest(true);

    return () => {
      cancelled = true;
      release();
      offBatch();
      offOpen();
      c.chart.timeScale().unsubscribeVisibleLogicalRangeChange(onRange);
      c.chart.unsubscribeCrosshairMove(onCrosshair);
    };
  }, [socket, symbol, tickSize, interval]);

  return (
    <div className="chart-wrap">
      <div className="chart-legend" ref={legendRef} aria-live="off" />
      <div className="chart-host" ref={hostRef} data-testid="price-chart" data-status={status} />
      {status === 'loading' && <div className="chart-overlay">Loading candles…</div>}
      {status === 'empty' && (
        <div className="chart-overlay">
          No trades yet for {instrument.symbol} at {interval}
        </div>
      )}
      {status === 'error' && <div className="chart-overlay error">Candles unavailable: {error}</div>}
      {loadingOlder && <div className="chart-older">Loading older candles…</div>}
    </div>
  );
}
