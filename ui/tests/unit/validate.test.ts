import { describe, expect, it } from 'vitest';
import {
  checkServerAddress,
  fieldOfBackendError,
  isIpv6,
  validateSettings,
  type SettingsInput,
} from '../../src/validate';

const good: SettingsInput = {
  server: 'pbx.example.com',
  extension: '101',
  auth_user: '',
  domain: '',
  transport: 'udp',
  port: '',
  outbound_proxy: '',
  expires: '300',
  start_at_login: false,
  password: 'hunter2',
};

describe('checkServerAddress', () => {
  it.each([
    'pbx.example.com',
    'pbx',
    '198.18.0.1',
    '198.18.0.1:5060',
    '[2001:db8::1]',
    '[2001:db8::1]:5061',
    '2001:db8::1',
    'sip:pbx.example.com',
    'sips:pbx.example.com:5061;transport=tls',
    'SIP:PBX.EXAMPLE.COM',
  ])('accepts %s', (v) => {
    expect(checkServerAddress(v, 'server address')).toBeNull();
  });

  it.each([
    ['', 'Enter the server address'],
    ['pbx example.com', 'cannot contain spaces'],
    ['https://pbx.example.com', 'not a web address'],
    ['sip:101@pbx.example.com', 'without an extension'],
    ['pbx_example', 'not a valid server address'],
    ['pbx.example.com:70000', 'not a valid server address'],
    ['300.1.1.1', 'not a valid server address'],
    ['sip:', 'not a valid server address'],
  ])('rejects %s', (v, msg) => {
    expect(checkServerAddress(v, 'server address')).toContain(msg);
  });
});

describe('isIpv6', () => {
  it('accepts full, compressed and v4-mapped forms only', () => {
    expect(isIpv6('::1')).toBe(true);
    expect(isIpv6('2001:db8:0:0:0:0:0:1')).toBe(true);
    expect(isIpv6('::ffff:198.18.0.1')).toBe(true);
    expect(isIpv6('2001:db8::1::2')).toBe(false);
    expect(isIpv6('2001:db8:0:0:0:0:1')).toBe(false);
    expect(isIpv6('pbx')).toBe(false);
  });
});

describe('validateSettings', () => {
  it('turns good input into Settings and the password', () => {
    const r = validateSettings(
      { ...good, auth_user: ' a101 ', port: '5070', outbound_proxy: 'sip:proxy.example.com' },
      false,
    );
    expect(r.errors).toEqual({});
    expect(r.settings).toEqual({
      server: 'pbx.example.com',
      extension: '101',
      auth_user: 'a101',
      domain: null,
      transport: 'udp',
      port: 5070,
      outbound_proxy: 'sip:proxy.example.com',
      expires: 300,
      start_at_login: false,
    });
    expect(r.password).toBe('hunter2');
  });

  it('keeps the stored password when the field is blank', () => {
    const r = validateSettings({ ...good, password: '' }, true);
    expect(r.errors).toEqual({});
    expect(r.password).toBeNull();
  });

  it('requires a password on first setup', () => {
    expect(validateSettings({ ...good, password: '' }, false).errors.password).toBe(
      'Enter the password for this extension.',
    );
  });

  it('checks the extension', () => {
    expect(validateSettings({ ...good, extension: '' }, true).errors.extension).toContain('Enter');
    expect(validateSettings({ ...good, extension: '1 01' }, true).errors.extension).toContain(
      'spaces',
    );
    expect(validateSettings({ ...good, extension: '101@pbx' }, true).errors.extension).toContain(
      '“@”',
    );
  });

  it.each(['0', '65536', 'abc', '50.5', '-1'])('rejects port %s', (port) => {
    expect(validateSettings({ ...good, port }, true).errors.port).toContain('1 to 65535');
  });

  it.each(['1', '5060', '65535'])('accepts port %s', (port) => {
    expect(validateSettings({ ...good, port }, true).errors.port).toBeUndefined();
  });

  it.each(['59', '3601', '30.5', 'x'])('rejects expiry %s', (expires) => {
    expect(validateSettings({ ...good, expires }, true).errors.expires).toContain('60 to 3600');
  });

  it.each(['server', 'extension', 'auth_user', 'domain', 'outbound_proxy'] as const)(
    'refuses a control character in %s, as the backend does',
    (field) => {
      for (const bad of ['x\r\nX-Injected: 1', 'x\u0000', 'x\u001b[31m']) {
        const r = validateSettings({ ...good, [field]: bad }, true);
        expect(r.settings).toBeUndefined();
        expect(r.errors[field]).toMatch(/control characters/);
      }
    },
  );

  it('uses 300 s when expiry is left empty', () => {
    expect(validateSettings({ ...good, expires: '' }, true).settings?.expires).toBe(300);
  });

  it('rejects an unknown transport and a bad outbound proxy', () => {
    const r = validateSettings({ ...good, transport: 'sctp', outbound_proxy: 'a b' }, true);
    expect(r.errors.transport).toBeDefined();
    expect(r.errors.outbound_proxy).toContain('outbound proxy cannot contain spaces');
    expect(r.settings).toBeUndefined();
  });
});

describe('fieldOfBackendError', () => {
  it('maps backend field names to form fields', () => {
    expect(fieldOfBackendError('port')).toBe('port');
    expect(fieldOfBackendError('settings.outbound_proxy')).toBe('outbound_proxy');
    expect(fieldOfBackendError('authUser')).toBe('auth_user');
    expect(fieldOfBackendError('nonsense')).toBeNull();
    expect(fieldOfBackendError(undefined)).toBeNull();
  });
});
