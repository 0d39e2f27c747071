import { test as base, expect, type Page } from '@playwright/test';
import { buildSync } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Settings, StatusEvent, UiState } from '../../src/types';

const here = dirname(fileURLToPath(import.meta.url));
export const SHOTS = resolve(here, '../../../test-output/ui');

let bundle: string | null = null;
function mockBundle(): string {
  if (bundle === null) {
    const out = buildSync({
      entryPoints: [resolve(here, 'mock-page.ts')],
      bundle: true,
      format: 'iife',
      target: 'es2020',
      write: false,
    });
    bundle = out.outputFiles[0]?.text ?? '';
  }
  return bundle;
}

/** The CSP the app is meant to run under in Tauri (minus Tauri's own ipc: sources). */
export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'";

export const T0 = Date.UTC(2026, 10, 24, 6, 10, 0, 0);
export const iso = (ms: number): string => new Date(ms).toISOString();

export interface Scenario {
  state: unknown;
  reject?: Record<string, unknown>;
  saveResult?: unknown;
}

export const settings: Settings = {
  server: 'pbx.example.com',
  extension: '101',
  auth_user: null,
  domain: null,
  transport: 'udp',
  port: null,
  outbound_proxy: null,
  expires: 600,
  start_at_login: false,
};

/** A status as the tray process sends it; `over` may hold what a newer one might send. */
export function statusAt(over: Partial<StatusEvent> = {}): StatusEvent {
  return {
    at: iso(T0),
    account: 'default',
    state: 'registered',
    cause: 'registered',
    contact: 'sip:101@198.18.0.2:40000;transport=udp',
    server: '198.18.0.1:5060',
    transport: 'udp',
    local_address: '198.18.0.2:40000',
    expires_in: 600,
    next_refresh_in: 560,
    next_attempt_in: null,
    problem: null,
    bindings: [
      {
        contact: 'sip:101@198.18.0.2:40000;transport=udp',
        expires_in: 600,
        ours: true,
        stale: false,
      },
    ],
    expiry_adjusted: null,
    extension_in_use: null,
    ...over,
  };
}

export function uiState(over: Partial<UiState> = {}): UiState {
  return {
    settings,
    has_password: true,
    status: statusAt(),
    timeline: [
      { at: iso(T0 - 120_000), kind: 'network_changed', text: 'Network changed: now on wlan0' },
      { at: iso(T0), kind: 'registered', text: 'Registered on pbx.example.com' },
    ],
    trace: [],
    interface: 'wlan0',
    other_accounts: [],
    softphones: [],
    ...over,
  };
}

export interface Harness {
  open(scenario: Scenario, opts?: { now?: number }): Promise<void>;
  emit(event: string, payload: unknown): Promise<void>;
  calls(cmd?: string): Promise<{ cmd: string; args: unknown }[]>;
  shot(name: string): Promise<void>;
}

export const test = base.extend<{ vf: Harness; cspViolations: string[] }>({
  cspViolations: async ({ page }, use) => {
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    page.on('pageerror', (e) => violations.push(`pageerror: ${e.message}`));
    await use(violations);
  },
  vf: async ({ page, cspViolations }, use) => {
    // Serve every document with a strict CSP, as Tauri will.
    await page.route('**/*', async (route) => {
      const response = await route.fetch();
      const headers = { ...response.headers() };
      if (route.request().resourceType() === 'document') headers['content-security-policy'] = CSP;
      await route.fulfill({ response, headers });
    });
    const harness: Harness = {
      async open(scenario, opts) {
        const time = opts?.now ?? T0 + 5 * 60_000;
        // Paused: the page's clock moves only when a test says so (runFor), so a countdown
        // never depends on how fast this machine loads the page. pauseAt only moves forward,
        // so install a minute early; no page is loaded yet to see the jump.
        await page.clock.install({ time: time - 60_000 });
        await page.clock.pauseAt(time);
        await page.addInitScript((s) => {
          (window as unknown as { __VF_SCENARIO__: unknown }).__VF_SCENARIO__ = s;
        }, scenario);
        await page.addInitScript({ content: mockBundle() });
        await page.goto('/');
        await expect(page.locator('#loading')).toBeHidden();
      },
      async emit(event, payload) {
        await page.evaluate(
          ([e, p]) =>
            (
              window as unknown as { __vf: { emit: (e: string, p: unknown) => Promise<unknown> } }
            ).__vf.emit(e, p),
          [event, payload] as const,
        );
      },
      async calls(cmd) {
        const all = await page.evaluate(
          () =>
            (window as unknown as { __vf: { calls: { cmd: string; args: unknown }[] } }).__vf.calls,
        );
        return cmd ? all.filter((c) => c.cmd === cmd) : all;
      },
      async shot(name) {
        mkdirSync(SHOTS, { recursive: true });
        await page.screenshot({ path: resolve(SHOTS, `${name}.png`), fullPage: true });
      },
    };
    await use(harness);
    expect(cspViolations, 'no CSP violations or page errors').toEqual([]);
  },
});

export { expect };
export type { Page };
