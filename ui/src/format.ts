// Duration and time formatting. Pure functions; `now` is always passed in.

/** "42 s", "5 min", "2 h 5 min", "3 d 4 h" — coarse, for "for …" (time in a state). */
export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d} d` : `${d} d ${h % 24} h`;
}

/** "4 min 20 s", "42 s", "1 h 2 min" — precise to the second below an hour, for countdowns. */
export function formatCountdown(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m} min` : `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`;
}

/** Parses an RFC 3339 timestamp; NaN-safe (returns null for garbage). */
export function parseAt(at: string | null | undefined): number | null {
  if (!at) return null;
  const t = Date.parse(at);
  return Number.isNaN(t) ? null : t;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** Local wall-clock time "14:03:27". */
export function formatClock(at: string): string {
  const t = parseAt(at);
  if (t === null) return at;
  const d = new Date(t);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Local wall-clock time with milliseconds "14:03:27.123", for the SIP trace. */
export function formatClockMs(at: string): string {
  const t = parseAt(at);
  if (t === null) return at;
  return `${formatClock(at)}.${pad(new Date(t).getMilliseconds(), 3)}`;
}
