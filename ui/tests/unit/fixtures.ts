import type { StatusEvent } from '../../src/types';

export const T0 = Date.UTC(2026, 10, 24, 6, 10, 0, 0);

export function status(over: Partial<StatusEvent> = {}): StatusEvent {
  return {
    at: new Date(T0).toISOString(),
    account: 'default',
    state: 'registered',
    cause: 'registered',
    contact: 'sip:101@198.18.0.2:40000;transport=udp',
    server: '198.18.0.1:5060',
    transport: 'udp',
    local_address: '198.18.0.2:40000',
    expires_in: 300,
    next_refresh_in: 260,
    next_attempt_in: null,
    problem: null,
    bindings: [
      {
        contact: 'sip:101@198.18.0.2:40000;transport=udp',
        expires_in: 300,
        ours: true,
        stale: false,
      },
    ],
    expiry_adjusted: null,
    extension_in_use: null,
    ...over,
  };
}
