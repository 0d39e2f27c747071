// Bounded, newest-first lists for the timeline and the SIP trace.

import { parseAt } from './format';
import type { TimelineEntry, TraceEvent } from './types';

export const TIMELINE_LIMIT = 200;
export const TRACE_LIMIT = 300;

function keyOf(e: { at: string; kind?: string; text: string }): string {
  return `${e.at}\u0000${e.kind ?? ''}\u0000${e.text}`;
}

/**
 * Merges entries into a newest-first list, dropping exact duplicates (the same entry can arrive
 * both in get_state and as an event), keeping at most `limit`.
 */
export function mergeNewestFirst<T extends { at: string; text: string; kind?: string }>(
  existing: readonly T[],
  incoming: readonly T[],
  limit: number,
): T[] {
  const seen = new Set<string>();
  const all: { e: T; t: number; i: number }[] = [];
  let i = 0;
  for (const e of [...incoming, ...existing]) {
    const k = keyOf(e);
    if (seen.has(k)) continue;
    seen.add(k);
    all.push({ e, t: parseAt(e.at) ?? 0, i: i++ });
  }
  // Newest first; among equal times, incoming before existing, and later-arrived first.
  all.sort((a, b) => b.t - a.t || a.i - b.i);
  return all.slice(0, limit).map((x) => x.e);
}

/** Adds one pushed entry in front; O(limit). Pushed entries are assumed to be the newest. */
export function pushBounded<T>(list: readonly T[], entry: T, limit: number): T[] {
  const out = [entry, ...list];
  if (out.length > limit) out.length = limit;
  return out;
}

export function mergeTimeline(
  existing: readonly TimelineEntry[],
  incoming: readonly TimelineEntry[],
): TimelineEntry[] {
  return mergeNewestFirst(existing, incoming, TIMELINE_LIMIT);
}

export function mergeTrace(
  existing: readonly TraceEvent[],
  incoming: readonly TraceEvent[],
): TraceEvent[] {
  return mergeNewestFirst(existing, incoming, TRACE_LIMIT);
}
