import { describe, expect, it } from 'vitest';
import { guidanceFor, networkChurn } from '../../src/guidance';
import { PROBLEM_CODES } from '../../src/types';
import { T0 } from './fixtures';

describe('guidanceFor', () => {
  it('has specific guidance for every known code', () => {
    const fallback = guidanceFor('no_such_code');
    for (const code of PROBLEM_CODES) {
      const g = guidanceFor(code);
      expect(g.text.length, code).toBeGreaterThan(20);
      expect(g, code).not.toBe(fallback);
    }
  });

  it('sends a wrong password to the password field', () => {
    const g = guidanceFor('wrong_password');
    expect(g.text).toBe('Ask your administrator for the right password and enter it again.');
    expect(g.button?.target).toBe('password');
  });

  it('suggests TCP or TLS on a timeout and opens the transport', () => {
    const g = guidanceFor('timeout');
    expect(g.text).toContain('firewall');
    expect(g.text).toContain('TCP or TLS');
    expect(g.button?.target).toBe('transport');
  });

  it('tells to check Wi-Fi or the cable when the network is down', () => {
    expect(guidanceFor('network_down').text).toContain('Check Wi-Fi or the cable');
  });

  it('covers the keychain and certificates', () => {
    expect(guidanceFor('credentials').text).toContain('keychain');
    expect(guidanceFor('credentials').button?.target).toBe('password');
    expect(guidanceFor('tls_certificate').text).toContain('certificate');
  });

  it('falls back to copying details for an unknown code', () => {
    expect(guidanceFor('brand_new').button?.target).toBe('copy_details');
    expect(guidanceFor('constructor').button?.target).toBe('copy_details');
  });
});

describe('networkChurn', () => {
  const at = (msAgo: number) => new Date(T0 - msAgo).toISOString();
  it('flags three network changes within ten minutes', () => {
    const tl = [
      { at: at(1000), kind: 'network_changed', text: '' },
      { at: at(60_000), kind: 'registered', text: '' },
      { at: at(120_000), kind: 'network_changed', text: '' },
      { at: at(500_000), kind: 'network_changed', text: '' },
    ];
    expect(networkChurn(tl, T0)).toBe(3);
  });

  it('ignores old or too few changes', () => {
    const tl = [
      { at: at(1000), kind: 'network_changed', text: '' },
      { at: at(120_000), kind: 'network_changed', text: '' },
      { at: at(11 * 60_000), kind: 'network_changed', text: '' },
    ];
    expect(networkChurn(tl, T0)).toBeNull();
  });
});
