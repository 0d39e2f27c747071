import { describe, expect, it } from 'vitest';
import { countdownOf, headerOf, lookOf, nextStateSince, statusView } from '../../src/model';
import { STATES, type ExpiryAdjustment, type ExtensionInUse } from '../../src/types';
import { status, T0 } from './fixtures';

describe('lookOf', () => {
  it('gives every state its own label and icon shape', () => {
    const labels = new Set(STATES.map((s) => lookOf(s).label));
    const icons = new Set(STATES.map((s) => lookOf(s).icon));
    expect(labels.size).toBe(STATES.length);
    expect(icons.size).toBe(STATES.length);
  });

  it('uses the agreed wording', () => {
    expect(lookOf('registered').label).toBe('Registered');
    expect(lookOf('registering').label).toBe('Registering…');
    expect(lookOf('retrying').label).toBe('Retrying');
    expect(lookOf('failed').label).toBe('Not registered — failed');
    expect(lookOf('offline').label).toBe('Offline');
    expect(lookOf('unregistered').label).toBe('Unregistered');
    expect(lookOf('registered').icon).toBe('check');
    expect(lookOf('failed').icon).toBe('cross');
    expect(lookOf('offline').icon).toBe('cloud-off');
  });

  it('survives a state it does not know', () => {
    expect(lookOf('teleporting').label).toBe('Unknown state');
    expect(lookOf('toString').label).toBe('Unknown state');
  });
});

describe('nextStateSince', () => {
  it('keeps the start time across refreshes of the same state', () => {
    const first = nextStateSince(null, status(), 0);
    expect(first.since).toBe(T0);
    const later = status({ at: new Date(T0 + 260_000).toISOString(), cause: 'refreshed' });
    expect(nextStateSince(first, later, 0).since).toBe(T0);
  });

  it('restarts when the state changes', () => {
    const first = nextStateSince(null, status(), 0);
    const failed = status({ state: 'retrying', at: new Date(T0 + 10_000).toISOString() });
    expect(nextStateSince(first, failed, 0)).toEqual({ state: 'retrying', since: T0 + 10_000 });
  });

  it('falls back to the local clock when at is unreadable', () => {
    expect(nextStateSince(null, status({ at: 'bogus' }), 1234).since).toBe(1234);
  });
});

describe('countdownOf', () => {
  it('counts down to the next refresh from the status time', () => {
    const s = status({ next_refresh_in: 260 });
    expect(countdownOf(s, T0)).toEqual({ label: 'Next refresh', value: 'in 4 min 20 s' });
    expect(countdownOf(s, T0 + 1000)).toEqual({ label: 'Next refresh', value: 'in 4 min 19 s' });
    expect(countdownOf(s, T0 + 260_000)?.value).toBe('now');
  });

  it('counts down to the next attempt while retrying', () => {
    const s = status({ state: 'retrying', next_refresh_in: null, next_attempt_in: 12 });
    expect(countdownOf(s, T0 + 2000)).toEqual({ label: 'Next attempt', value: 'in 10 s' });
  });

  it('shows nothing without a deadline', () => {
    expect(countdownOf(status({ state: 'registering', next_refresh_in: null }), T0)).toBeNull();
    expect(countdownOf(status({ state: 'retrying', next_attempt_in: null }), T0)).toBeNull();
  });
});

describe('statusView', () => {
  it('maps a registered status to rows and "for" time', () => {
    const v = statusView(status(), T0, T0 + 5 * 60_000 + 3000, 'wlan0');
    expect(v.since).toBe('for 5 min');
    const rows = Object.fromEntries(v.rows.map((r) => [r.key, r.value]));
    expect(rows['contact']).toBe('sip:101@198.18.0.2:40000;transport=udp');
    expect(rows['transport']).toBe('UDP');
    expect(rows['local']).toBe('198.18.0.2:40000');
    expect(rows['interface']).toBe('wlan0');
    expect(rows['others']).toBeUndefined();
    expect(v.announcement).toContain('Registered');
  });

  it('shows no interface once there is no local address (no connection)', () => {
    const v = statusView(status({ local_address: null }), T0, T0, 'lo');
    const rows = Object.fromEntries(v.rows.map((r) => [r.key, r.value]));
    expect(rows['local']).toBe('—');
    expect(rows['interface']).toBe('—');
  });

  it('mentions other devices registered on the same extension', () => {
    const s = status({
      bindings: [
        { contact: 'sip:a', expires_in: 300, ours: true, stale: false },
        { contact: 'sip:b', expires_in: 100, ours: false, stale: false },
      ],
    });
    const others = statusView(s, T0, T0, null).rows.find((r) => r.key === 'others');
    expect(others?.value).toBe('1 other device is registered for this extension');
  });

  it('names an old registration of this computer being removed', () => {
    const s = status({
      bindings: [
        { contact: 'sip:a', expires_in: 300, ours: true, stale: false },
        { contact: 'sip:old', expires_in: 200, ours: true, stale: true },
      ],
    });
    const rows = Object.fromEntries(statusView(s, T0, T0, null).rows.map((r) => [r.key, r.value]));
    expect(rows['stale']).toContain('1 old registration of this computer');
    expect(rows['others']).toBeUndefined();
  });

  it('says when the renewal interval differs from what the server granted', () => {
    const message =
      'The phone server keeps this registration for only 1 s. Tell your administrator.';
    const adjusted: ExpiryAdjustment = {
      granted: 1,
      refreshed_as: 30,
      reason: 'below_minimum',
      message,
    };
    const rows = Object.fromEntries(
      statusView(status({ expiry_adjusted: adjusted }), T0, T0, null).rows.map((r) => [
        r.key,
        r.value,
      ]),
    );
    expect(rows['expiry']).toBe(message);
    const plain = statusView(status(), T0, T0, null).rows.map((r) => r.key);
    expect(plain).not.toContain('expiry');
  });

  it('includes the problem in the announcement', () => {
    const s = status({
      state: 'failed',
      problem: { code: 'wrong_password', message: 'Bad password.', action: 'x', detail: 'y' },
    });
    expect(statusView(s, T0, T0, null).announcement).toBe(
      'Not registered — failed. Calls cannot reach you. This needs your action. Bad password.',
    );
  });
});

describe('headerOf', () => {
  it('prefers settings, falls back to status', () => {
    expect(headerOf(null, status())).toEqual({ extension: 'default', server: '198.18.0.1:5060' });
    expect(headerOf(null, null)).toEqual({ extension: '—', server: '—' });
  });
});

describe('another device on the extension', () => {
  const inUse: ExtensionInUse = {
    account: 'default',
    others: [
      {
        contact: 'sip:101@198.18.5.5:5062',
        address: '198.18.5.5:5062',
        user_agent: null,
        expires_in: 300,
      },
    ],
    detected_by: 'binding_check',
    message:
      'Another device (198.18.5.5:5062) is registered on this extension instead of this computer.',
    take_over_note: 'Use this computer registers the extension here now.',
  };

  it('does not show "Registered" as the whole truth', () => {
    const view = statusView(status({ extension_in_use: inUse }), T0, T0, null);
    expect(view.look.label).toBe('Extension in use elsewhere');
    expect(view.look.tone).toBe('warn');
    expect(view.announcement).toContain('Another device took this extension');
  });

  it('leaves other states and statuses without it alone', () => {
    expect(statusView(status(), T0, T0, null).look.label).toBe('Registered');
    expect(statusView(status({ extension_in_use: null }), T0, T0, null).look.label).toBe(
      'Registered',
    );
    const failed = status({ state: 'failed', extension_in_use: inUse });
    expect(statusView(failed, T0, T0, null).look.label).toBe('Not registered — failed');
  });
});
