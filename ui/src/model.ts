// Maps a status (plus the local clock) to what the window shows. No DOM here.

import { formatCountdown, formatElapsed, parseAt } from './format';
import type { Settings, StatusEvent } from './types';

export type IconShape =
  'check' | 'spinner' | 'arrows' | 'cross' | 'cloud-off' | 'minus' | 'dots' | 'question';

export type Tone = 'ok' | 'busy' | 'warn' | 'bad' | 'neutral';

export interface StateLook {
  label: string;
  icon: IconShape;
  tone: Tone;
  /** One sentence: can calls reach this device? */
  summary: string;
}

const LOOKS: Record<string, StateLook> = {
  idle: {
    label: 'Not started',
    icon: 'dots',
    tone: 'neutral',
    summary: 'Not connected to the phone server yet.',
  },
  registering: {
    label: 'Registering…',
    icon: 'spinner',
    tone: 'busy',
    summary: 'Connecting to the phone server…',
  },
  registered: {
    label: 'Registered',
    icon: 'check',
    tone: 'ok',
    summary: 'Calls can reach this extension on this computer.',
  },
  retrying: {
    label: 'Retrying',
    icon: 'arrows',
    tone: 'warn',
    summary: 'Calls cannot reach you right now. Trying again automatically.',
  },
  failed: {
    label: 'Not registered — failed',
    icon: 'cross',
    tone: 'bad',
    summary: 'Calls cannot reach you. This needs your action.',
  },
  offline: {
    label: 'Offline',
    icon: 'cloud-off',
    tone: 'bad',
    summary: 'No network: calls cannot reach you. Reconnects by itself when the network is back.',
  },
  unregistered: {
    label: 'Unregistered',
    icon: 'minus',
    tone: 'neutral',
    summary: 'Signed out: calls will not reach this computer.',
  },
};

const UNKNOWN_LOOK: StateLook = {
  label: 'Unknown state',
  icon: 'question',
  tone: 'neutral',
  summary: 'The app reported a state this window does not know.',
};

export function lookOf(state: string): StateLook {
  return Object.prototype.hasOwnProperty.call(LOOKS, state) ? LOOKS[state]! : UNKNOWN_LOOK;
}

/** Tracks when the current state began: a refresh (same state) keeps the start time. */
export function nextStateSince(
  previous: { state: string; since: number } | null,
  status: StatusEvent,
  fallbackNow: number,
): { state: string; since: number } {
  if (previous && previous.state === status.state) return previous;
  return { state: status.state, since: parseAt(status.at) ?? fallbackNow };
}

export interface Countdown {
  label: string;
  value: string;
}

/** The countdown line: next refresh while registered, next attempt while retrying. */
export function countdownOf(status: StatusEvent, now: number): Countdown | null {
  const at = parseAt(status.at);
  if (at === null) return null;
  if (status.state === 'retrying' || status.state === 'failed' || status.state === 'offline') {
    if (status.next_attempt_in === null || status.next_attempt_in === undefined) return null;
    const left = at + status.next_attempt_in * 1000 - now;
    return { label: 'Next attempt', value: left > 0 ? `in ${formatCountdown(left)}` : 'now' };
  }
  if (status.state === 'registered') {
    if (status.next_refresh_in === null || status.next_refresh_in === undefined) return null;
    const left = at + status.next_refresh_in * 1000 - now;
    return { label: 'Next refresh', value: left > 0 ? `in ${formatCountdown(left)}` : 'now' };
  }
  return null;
}

export interface DetailRow {
  key: string;
  label: string;
  value: string;
}

export interface StatusView {
  state: string;
  look: StateLook;
  /** "for 5 min" */
  since: string;
  countdown: Countdown | null;
  rows: DetailRow[];
  /** Spoken by the live region when the state changes. */
  announcement: string;
}

const TRANSPORT_NAMES: Record<string, string> = { udp: 'UDP', tcp: 'TCP', tls: 'TLS (encrypted)' };

export function transportName(t: string | null | undefined): string {
  if (!t) return '—';
  return TRANSPORT_NAMES[t] ?? t.toUpperCase();
}

/** While another device holds the extension, "registered" is not the whole truth. */
const IN_USE_LOOK: StateLook = {
  label: 'Extension in use elsewhere',
  icon: 'arrows',
  tone: 'warn',
  summary: 'Another device took this extension: calls may go there instead of this computer.',
};

/** The look of a status: its state's, unless another device holds the extension. */
export function lookOfStatus(status: StatusEvent): StateLook {
  if (status.extension_in_use && status.state === 'registered') return IN_USE_LOOK;
  return lookOf(status.state);
}

export function statusView(
  status: StatusEvent,
  stateSince: number,
  now: number,
  iface: string | null,
): StatusView {
  const look = lookOfStatus(status);
  const rows: DetailRow[] = [];
  const countdown = countdownOf(status, now);
  if (countdown) rows.push({ key: 'countdown', label: countdown.label, value: countdown.value });
  rows.push({ key: 'contact', label: 'Contact address', value: status.contact ?? '—' });
  rows.push({ key: 'transport', label: 'Transport', value: transportName(status.transport) });
  rows.push({ key: 'local', label: 'Local address', value: status.local_address ?? '—' });
  // The interface name arrives separately (get_state): with no local address it is stale.
  const shownIface = status.local_address ? (iface ?? '—') : '—';
  rows.push({ key: 'interface', label: 'Network interface', value: shownIface });
  if (status.server) rows.push({ key: 'server', label: 'Server address', value: status.server });
  const others = (status.bindings ?? []).filter((b) => !b.ours).length;
  if (others > 0) {
    rows.push({
      key: 'others',
      label: 'Other devices',
      value: `${others} other ${others === 1 ? 'device is' : 'devices are'} registered for this extension`,
    });
  }
  const stale = (status.bindings ?? []).filter((b) => b.ours && b.stale).length;
  if (stale > 0) {
    rows.push({
      key: 'stale',
      label: 'Old registration',
      value: `${stale} old ${stale === 1 ? 'registration' : 'registrations'} of this computer (from before a restart or a network change) being removed`,
    });
  }
  if (status.expiry_adjusted && status.state === 'registered') {
    rows.push({ key: 'expiry', label: 'Renewal', value: status.expiry_adjusted.message });
  }
  let announcement = `${look.label}. ${look.summary}`;
  if (status.problem) announcement += ` ${status.problem.message}`;
  return {
    state: status.state,
    look,
    since: `for ${formatElapsed(now - stateSince)}`,
    countdown,
    rows,
    announcement,
  };
}

/** "Extension 101 on pbx.example.com" parts for the header. */
export function headerOf(
  settings: Settings | null,
  status: StatusEvent | null,
): {
  extension: string;
  server: string;
} {
  return {
    extension: settings?.extension || status?.account || '—',
    server: settings?.server || status?.server || '—',
  };
}
