import { describe, expect, it } from 'vitest';
import { mergeTimeline, mergeTrace, TIMELINE_LIMIT, TRACE_LIMIT } from '../../src/lists';
import type { TimelineEntry, TraceEvent } from '../../src/types';
import { T0 } from './fixtures';

const entry = (i: number, kind = 'refreshed'): TimelineEntry => ({
  at: new Date(T0 + i * 1000).toISOString(),
  kind,
  text: `event ${i}`,
});

describe('mergeTimeline', () => {
  it('orders newest first whatever the input order', () => {
    const out = mergeTimeline([], [entry(1), entry(3), entry(2)]);
    expect(out.map((e) => e.text)).toEqual(['event 3', 'event 2', 'event 1']);
  });

  it('bounds the list, keeping the newest', () => {
    let list: TimelineEntry[] = [];
    for (let i = 0; i < TIMELINE_LIMIT + 50; i++) list = mergeTimeline(list, [entry(i)]);
    expect(list).toHaveLength(TIMELINE_LIMIT);
    expect(list[0]?.text).toBe(`event ${TIMELINE_LIMIT + 49}`);
    expect(list[TIMELINE_LIMIT - 1]?.text).toBe('event 50');
  });

  it('drops exact duplicates (state and event overlap)', () => {
    const out = mergeTimeline([entry(1), entry(2)], [entry(2), entry(3)]);
    expect(out).toHaveLength(3);
  });

  it('keeps different events at the same instant', () => {
    const a = entry(1, 'network_changed');
    const b = { ...entry(1, 'registered'), text: 'registered again' };
    expect(mergeTimeline([a], [b])).toHaveLength(2);
  });
});

describe('mergeTrace', () => {
  it('bounds the trace to its limit', () => {
    const many: TraceEvent[] = Array.from({ length: TRACE_LIMIT + 10 }, (_, i) => ({
      at: new Date(T0 + i).toISOString(),
      account: 'default',
      direction: 'sent',
      remote: '198.18.0.1:5060',
      transport: 'udp',
      text: `OPTIONS ${i}`,
    }));
    const out = mergeTrace([], many);
    expect(out).toHaveLength(TRACE_LIMIT);
    expect(out[0]?.text).toBe(`OPTIONS ${TRACE_LIMIT + 9}`);
  });
});
