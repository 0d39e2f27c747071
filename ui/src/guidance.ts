// UI-side guidance per problem code: what the agent can do, in plain words, and which part of
// Settings (or which command) the button leads to.

import type { TimelineEntry } from './types';

/** Where a guidance button leads. Field targets open Settings and focus that field. */
export type GuidanceTarget =
  | 'password'
  | 'transport'
  | 'server'
  | 'extension'
  | 'auth_user'
  | 'port'
  | 'retry'
  | 'copy_details';

export interface Guidance {
  text: string;
  button?: { label: string; target: GuidanceTarget };
}

const GUIDANCE: Record<string, Guidance> = {
  wrong_password: {
    text: 'Ask your administrator for the right password and enter it again.',
    button: { label: 'Enter password', target: 'password' },
  },
  forbidden: {
    text: 'Ask your administrator whether this extension may register from this computer, and check the authentication user.',
    button: { label: 'Check authentication user', target: 'auth_user' },
  },
  unknown_extension: {
    text: 'Check the extension number for a typo; if it is right, ask your administrator whether it exists on this server.',
    button: { label: 'Check extension', target: 'extension' },
  },
  rejected: {
    text: 'Copy the technical details and send them to your administrator.',
    button: { label: 'Copy technical details', target: 'copy_details' },
  },
  timeout: {
    text: 'A firewall may be blocking SIP — try TCP or TLS.',
    button: { label: 'Change transport', target: 'transport' },
  },
  dns_failure: {
    text: 'Check the server name for typos, and that this computer is online.',
    button: { label: 'Check server address', target: 'server' },
  },
  connection_refused: {
    text: 'The server address, port or transport may be wrong. Compare them with what your administrator gave you.',
    button: { label: 'Check port', target: 'port' },
  },
  tls_certificate: {
    text: 'Do not continue on an untrusted network (such as public Wi-Fi). Ask your administrator whether the server name is right or its certificate changed.',
    button: { label: 'Check server address', target: 'server' },
  },
  server_error: {
    text: 'The problem is on the phone server. VICIfast keeps trying; tell your administrator if it lasts more than a few minutes.',
    button: { label: 'Try again now', target: 'retry' },
  },
  network_down: {
    text: 'Check Wi-Fi or the cable. VICIfast reconnects by itself when the network is back.',
  },
  transport_error: {
    text: 'The connection to the phone server keeps breaking. This often happens on a network that keeps changing (VPN, moving between Wi-Fi networks). A steady connection helps; TCP or TLS may too.',
    button: { label: 'Change transport', target: 'transport' },
  },
  invalid_response: {
    text: 'Something between you and the server (often a router’s “SIP ALG”) may be changing messages. TLS cannot be changed on the way; ask your administrator.',
    button: { label: 'Change transport', target: 'transport' },
  },
  extension_in_use: {
    text: 'Another phone or computer is signed in with this extension. Sign it out, or choose below which device keeps the extension.',
  },
  credentials: {
    text: 'The saved password could not be read from this computer’s keychain. Unlock the keychain (log out and in again), or enter the password again.',
    button: { label: 'Enter password', target: 'password' },
  },
  invalid_settings: {
    text: 'A setting cannot be used as it is (the details name it), so nothing was sent to the phone server. Correct it in Settings.',
    button: { label: 'Open settings', target: 'server' },
  },
  settings_file: {
    text: 'The settings file on this computer is damaged or comes from a newer VICIfast, so VICIfast left it as it is. Send the technical details to your administrator, who can repair or remove it.',
    button: { label: 'Copy technical details', target: 'copy_details' },
  },
};

const FALLBACK: Guidance = {
  text: 'Copy the technical details and send them to your administrator.',
  button: { label: 'Copy technical details', target: 'copy_details' },
};

/** Whether the window has its own advice for this code (then the engine's generic action is not shown beside it). */
export function hasGuidance(code: string): boolean {
  return Object.prototype.hasOwnProperty.call(GUIDANCE, code);
}

export function guidanceFor(code: string): Guidance {
  return Object.prototype.hasOwnProperty.call(GUIDANCE, code) ? GUIDANCE[code]! : FALLBACK;
}

export const NETWORK_CHURN_WINDOW_MS = 10 * 60 * 1000;
export const NETWORK_CHURN_THRESHOLD = 3;

/**
 * How many network changes the timeline shows in the last ten minutes, when that is enough to
 * call the network unstable; otherwise null.
 */
export function networkChurn(timeline: readonly TimelineEntry[], now: number): number | null {
  let n = 0;
  for (const e of timeline) {
    if (e.kind !== 'network_changed') continue;
    const t = Date.parse(e.at);
    if (!Number.isNaN(t) && now - t <= NETWORK_CHURN_WINDOW_MS && t <= now + 60_000) n++;
  }
  return n >= NETWORK_CHURN_THRESHOLD ? n : null;
}

export function churnText(n: number): string {
  return `Your network changed ${n} times in the last 10 minutes. Each change briefly cuts this extension off, so calls may be missed. Stay on one Wi-Fi network or use a cable if you can.`;
}
