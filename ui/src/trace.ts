// Presentation of SIP trace entries; every text shown or copied goes through redactSip.

import { formatClockMs } from './format';
import { redactSip } from './redact';
import type { TraceEvent } from './types';

export function traceHeading(e: TraceEvent): string {
  // Kept as a string: a newer tray process may send a direction this window does not know.
  const direction: string = e.direction;
  const arrow =
    direction === 'sent' ? '→ Sent to' : direction === 'received' ? '← Received from' : direction;
  return `${formatClockMs(e.at)}  ${arrow} ${e.remote} (${(e.transport || '').toUpperCase()})`;
}

export function traceBody(e: TraceEvent): string {
  return redactSip(e.text).trimEnd();
}

/** Oldest first, as support staff read a trace. `entries` is newest-first. */
export function traceToText(entries: readonly TraceEvent[]): string {
  return [...entries]
    .reverse()
    .map((e) => `${e.at} ${traceHeading(e)}\n${traceBody(e).replace(/\r\n/g, '\n')}\n`)
    .join('\n');
}
