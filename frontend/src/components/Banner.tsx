import { dismiss, notices } from '../state/notices';
import { useStore } from '../state/store';

export function Banner() {
  const list = useStore(notices);
  if (list.length === 0) return null;
  return (
    <div className="banner-stack" role="region" aria-label="Messages">
      {list.map((n) => (
        <div
          key={n.id}
          className={`banner ${n.kind}`}
          role={n.kind === 'error' ? 'alert' : 'status'}
          data-testid={`banner-${n.kind}`}
        >
          <span>{n.text}</span>
          <button type="button" className="icon-btn" aria-label="Dismiss" onClick={() => dismiss(n.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
