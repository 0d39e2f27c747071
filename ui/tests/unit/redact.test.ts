import { describe, expect, it } from 'vitest';
import { redactSip } from '../../src/redact';
import { traceToText } from '../../src/trace';

const REGISTER = [
  'REGISTER sip:198.18.0.1 SIP/2.0',
  'Via: SIP/2.0/UDP 198.18.0.2:40000;branch=z9hG4bK1',
  'Authorization: Digest username="101", realm="pbx", nonce="abc", response="deadbeef"',
  'Proxy-Authorization: Digest username="101", response="cafebabe"',
  'WWW-Authenticate: Digest realm="pbx", nonce="n1"',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

describe('redactSip', () => {
  it('replaces Authorization and Proxy-Authorization values, keeps the rest', () => {
    const out = redactSip(REGISTER);
    expect(out).not.toContain('deadbeef');
    expect(out).not.toContain('cafebabe');
    expect(out).toContain('Authorization: <redacted>\r\n');
    expect(out).toContain('Proxy-Authorization: <redacted>\r\n');
    expect(out).toContain('WWW-Authenticate: Digest realm="pbx", nonce="n1"');
    expect(out).toContain('Via: SIP/2.0/UDP 198.18.0.2:40000;branch=z9hG4bK1\r\n');
    expect(out.endsWith('Content-Length: 0\r\n\r\n')).toBe(true);
  });

  it('is case-insensitive and allows space before the colon', () => {
    const out = redactSip(
      'authorization : Digest response="x1"\nPROXY-AUTHORIZATION:Digest r="x2"\n',
    );
    expect(out).toBe('authorization : <redacted>\nPROXY-AUTHORIZATION: <redacted>\n');
  });

  it('removes folded continuation lines of the header', () => {
    const text = [
      'Authorization: Digest username="101",',
      '  realm="pbx",',
      '\tresponse="secret99"',
      'Call-ID: 42',
      '',
    ].join('\r\n');
    expect(redactSip(text)).toBe('Authorization: <redacted>\r\nCall-ID: 42\r\n');
  });

  it('keeps folded lines of other headers', () => {
    const text = 'Subject: hello\r\n world\r\nAuthorization: x\r\n y\r\nTo: <sip:101@pbx>';
    expect(redactSip(text)).toBe(
      'Subject: hello\r\n world\r\nAuthorization: <redacted>\r\nTo: <sip:101@pbx>',
    );
  });

  it('does not touch look-alike headers', () => {
    const text = 'X-Authorization-Hint: keep\nAuthentication-Info: nextnonce="k"\n';
    expect(redactSip(text)).toBe(text);
  });

  it('redacts an already-redacted value idempotently', () => {
    const once = redactSip(REGISTER);
    expect(redactSip(once)).toBe(once);
  });

  it('is used when the trace is copied', () => {
    const text = traceToText([
      {
        at: '2026-11-24T06:10:00.123Z',
        account: 'default',
        direction: 'sent',
        remote: '198.18.0.1:5060',
        transport: 'udp',
        text: REGISTER,
      },
    ]);
    expect(text).not.toContain('deadbeef');
    expect(text).toContain('Authorization: <redacted>');
  });
});
