// Presentation of SIP trace entries; every text shown or copied goes through redactSip.

import { formatClockMs } from './format';
import { redactSip } from './redact';
import type { TraceEvent } from './types';

export function traceHeading(e: TraceEvent): string {
  const arrow =
    e.direction === 'sent'
      ? '→ Sent to'
      : e.direction === 'received'
        ? '← Received from'
        : `${e.direction}`;
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
