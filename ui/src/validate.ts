// Client-side validation of the settings form, before save_settings is called.
// Messages say what is wrong and how to write it right.

import { TRANSPORTS, type Settings, type Transport } from './types';

/** Raw form values (strings as typed, the checkbox as a boolean). */
export interface SettingsInput {
  server: string;
  extension: string;
  auth_user: string;
  domain: string;
  transport: string;
  port: string;
  outbound_proxy: string;
  expires: string;
  start_at_login: boolean;
  password: string;
}

export type FieldName = keyof SettingsInput;
export type FieldErrors = Partial<Record<FieldName, string>>;

export const EXPIRES_MIN = 60;
export const EXPIRES_MAX = 3600;
export const EXPIRES_DEFAULT = 300;

const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
const IPV4_RE = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function isHostname(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  const h = host.endsWith('.') ? host.slice(0, -1) : host;
  if (/^[\d.]+$/.test(h)) return IPV4_RE.test(h);
  return h.split('.').every((l) => LABEL_RE.test(l));
}

export function isIpv6(host: string): boolean {
  if (!/^[0-9a-f:.]+$/i.test(host) || !host.includes(':')) return false;
  const doubles = host.split('::').length - 1;
  if (doubles > 1) return false;
  const groups = host.split(':').filter((g) => g.length > 0);
  const last = groups[groups.length - 1] ?? '';
  const hasV4 = last.includes('.');
  if (hasV4 && !IPV4_RE.test(last)) return false;
  const hexGroups = hasV4 ? groups.slice(0, -1) : groups;
  if (!hexGroups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return false;
  const count = hexGroups.length + (hasV4 ? 2 : 0);
  return doubles === 1 ? count < 8 : count === 8;
}

function isPort(s: string): boolean {
  if (!/^\d{1,5}$/.test(s)) return false;
  const n = Number(s);
  return n >= 1 && n <= 65535;
}

/** host, host:port, [v6], [v6]:port, bare v6. */
function isHostPort(s: string): boolean {
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0 || !isIpv6(s.slice(1, end))) return false;
    const rest = s.slice(end + 1);
    return rest === '' || (rest.startsWith(':') && isPort(rest.slice(1)));
  }
  if (isIpv6(s)) return true;
  const colon = s.lastIndexOf(':');
  if (colon >= 0) return isHostname(s.slice(0, colon)) && isPort(s.slice(colon + 1));
  return isHostname(s);
}

/**
 * Checks a server address: a host name or IP address (optionally with :port), or a sip:/sips: URI.
 * Returns an error message, or null when the value is acceptable.
 */
export function checkServerAddress(value: string, what: string): string | null {
  const v = value.trim();
  if (v === '') return `Enter the ${what}, for example pbx.example.com.`;
  if (/\s/.test(v)) return `The ${what} cannot contain spaces.`;
  let rest = v;
  const scheme = /^(sips?):/i.exec(v);
  if (scheme) {
    rest = v.slice(scheme[0].length);
    const semi = rest.indexOf(';');
    if (semi >= 0) rest = rest.slice(0, semi);
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
    return `Use a host name or a sip: / sips: address for the ${what}, not a web address.`;
  }
  if (rest.includes('@'))
    return `Enter the ${what} only, without an extension or user name (no “@”).`;
  if (!isHostPort(rest))
    return `“${v}” is not a valid ${what}. Use a host name like pbx.example.com, an IP address, or sip:pbx.example.com.`;
  return null;
}

function trimmedOrNull(s: string): string | null {
  const t = s.trim();
  return t === '' ? null : t;
}

export interface ValidationResult {
  errors: FieldErrors;
  /** Present when there are no errors. */
  settings?: Settings;
  /** null = keep the stored password. */
  password?: string | null;
}

// The same rule the backend applies to every field (vicifast_core::validate): a control
// character could change the SIP message, so it is refused before anything else is checked.
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

const CONTROL_LABELS: Partial<Record<FieldName, string>> = {
  server: 'server address',
  extension: 'extension',
  auth_user: 'authentication user name',
  domain: 'domain',
  port: 'port',
  outbound_proxy: 'outbound proxy',
  expires: 'registration time',
};

export function validateSettings(input: SettingsInput, hasPassword: boolean): ValidationResult {
  const errors: FieldErrors = {};

  const serverErr = checkServerAddress(input.server, 'server address');
  if (serverErr) errors.server = serverErr;

  const ext = input.extension.trim();
  if (ext === '') errors.extension = 'Enter your extension, for example 101.';
  else if (/\s/.test(ext)) errors.extension = 'The extension cannot contain spaces.';
  else if (ext.includes('@'))
    errors.extension = 'Enter the extension only, without “@” and the server.';

  const authUser = input.auth_user.trim();
  if (/\s/.test(authUser)) errors.auth_user = 'The authentication user cannot contain spaces.';
  else if (authUser.includes('@'))
    errors.auth_user = 'Enter the authentication user without “@”; put the domain in Domain.';

  const domain = input.domain.trim();
  if (domain !== '' && !(isHostname(domain) || isHostPort(domain) || isIpv6(domain)))
    errors.domain = 'Enter a domain like example.com, or leave it empty to use the server.';

  const transport = input.transport as Transport;
  if (!TRANSPORTS.includes(transport)) errors.transport = 'Choose UDP, TCP or TLS.';

  const port = input.port.trim();
  if (port !== '' && !isPort(port))
    errors.port = 'Enter a port from 1 to 65535, or leave it empty for the default.';

  const proxy = input.outbound_proxy.trim();
  if (proxy !== '') {
    const e = checkServerAddress(proxy, 'outbound proxy');
    if (e) errors.outbound_proxy = e;
  }

  const expiresRaw = input.expires.trim();
  const expires = expiresRaw === '' ? EXPIRES_DEFAULT : Number(expiresRaw);
  if (!/^\d*$/.test(expiresRaw) || expires < EXPIRES_MIN || expires > EXPIRES_MAX)
    errors.expires = `Enter a whole number of seconds from ${EXPIRES_MIN} to ${EXPIRES_MAX} (${EXPIRES_DEFAULT} is usual).`;

  if (!hasPassword && input.password === '')
    errors.password = 'Enter the password for this extension.';

  for (const [field, label] of Object.entries(CONTROL_LABELS) as [FieldName, string][]) {
    const value = input[field];
    if (typeof value === 'string' && CONTROL_RE.test(value))
      errors[field] = `The ${label} cannot contain control characters such as tabs or line breaks.`;
  }

  if (Object.keys(errors).length > 0) return { errors };
  return {
    errors,
    settings: {
      server: input.server.trim(),
      extension: ext,
      auth_user: trimmedOrNull(authUser),
      domain: trimmedOrNull(domain),
      transport,
      port: port === '' ? null : Number(port),
      outbound_proxy: trimmedOrNull(proxy),
      expires,
      start_at_login: input.start_at_login,
    },
    password: input.password === '' ? null : input.password,
  };
}

/** Maps a backend error's `field` ("port", "settings.port", "authUser") to a form field. */
export function fieldOfBackendError(field: string | undefined | null): FieldName | null {
  if (!field) return null;
  const last = field.split('.').pop() ?? field;
  const snake = last.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const known: FieldName[] = [
    'server',
    'extension',
    'auth_user',
    'domain',
    'transport',
    'port',
    'outbound_proxy',
    'expires',
    'start_at_login',
    'password',
  ];
  return known.includes(snake as FieldName) ? (snake as FieldName) : null;
}
