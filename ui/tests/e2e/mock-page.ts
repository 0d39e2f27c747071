// Runs inside the page before the app (bundled by the fixture with esbuild and injected as an
// init script). Mocks the Tauri IPC with @tauri-apps/api/mocks, events included.

import { mockIPC } from '@tauri-apps/api/mocks';

interface Scenario {
  state: unknown;
  /** Command name -> error object the command rejects with. */
  reject?: Record<string, unknown>;
  /** What save_settings resolves with; default: the state with the saved settings. */
  saveResult?: unknown;
}

interface Call {
  cmd: string;
  args: unknown;
}

declare global {
  interface Window {
    __VF_SCENARIO__: Scenario;
    __vf: { calls: Call[]; emit: (event: string, payload: unknown) => Promise<unknown> };
    __TAURI_INTERNALS__: { invoke: (cmd: string, args?: unknown) => Promise<unknown> };
  }
}

const scenario = window.__VF_SCENARIO__;
const calls: Call[] = [];

mockIPC(
  (cmd, args) => {
    calls.push({ cmd, args: JSON.parse(JSON.stringify(args ?? null)) as unknown });
    const rejection = scenario.reject?.[cmd];
    // Tauri rejects with the plain {code, message, field} object, not an Error.
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    if (rejection !== undefined) return Promise.reject(rejection);
    switch (cmd) {
      case 'get_state':
        return scenario.state;
      case 'save_settings': {
        if (scenario.saveResult !== undefined) return scenario.saveResult;
        const a = args as { settings: unknown };
        return { ...(scenario.state as object), settings: a.settings, has_password: true };
      }
      default:
        return null;
    }
  },
  { shouldMockEvents: true },
);

window.__vf = {
  calls,
  emit: (event, payload) =>
    window.__TAURI_INTERNALS__.invoke('plugin:event|emit', { event, payload }),
};
