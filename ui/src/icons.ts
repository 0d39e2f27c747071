// State icons as inline SVG built with the DOM (no innerHTML, no style attributes: CSP-safe).
// Each state has its own SHAPE so it reads without colour.

import type { IconShape } from './model';

const NS = 'http://www.w3.org/2000/svg';

type Shape = [tag: 'path' | 'circle' | 'line', attrs: Record<string, string>];

const SHAPES: Record<IconShape, Shape[]> = {
  check: [
    ['circle', { cx: '12', cy: '12', r: '10' }],
    ['path', { d: 'M7 12.5l3.2 3.2L17 9' }],
  ],
  spinner: [
    ['circle', { cx: '12', cy: '12', r: '9', class: 'icon-track' }],
    ['path', { d: 'M12 3a9 9 0 0 1 9 9', class: 'icon-spin' }],
  ],
  arrows: [
    ['path', { d: 'M20 11a8 8 0 0 0-14.3-4.9L4 8' }],
    ['path', { d: 'M4 3v5h5' }],
    ['path', { d: 'M4 13a8 8 0 0 0 14.3 4.9L20 16' }],
    ['path', { d: 'M20 21v-5h-5' }],
  ],
  cross: [
    ['path', { d: 'M8 2h8l6 6v8l-6 6H8l-6-6V8z' }],
    ['path', { d: 'M9 9l6 6M15 9l-6 6' }],
  ],
  'cloud-off': [
    ['path', { d: 'M7 18h10.5a4 4 0 0 0 .9-7.9A6 6 0 0 0 7.3 8.2 5 5 0 0 0 7 18z' }],
    ['line', { x1: '3', y1: '3', x2: '21', y2: '21' }],
  ],
  minus: [
    ['circle', { cx: '12', cy: '12', r: '10' }],
    ['path', { d: 'M7.5 12h9' }],
  ],
  dots: [
    ['circle', { cx: '12', cy: '12', r: '10', class: 'icon-dashed' }],
    ['path', { d: 'M8 12h.01M12 12h.01M16 12h.01' }],
  ],
  question: [
    ['circle', { cx: '12', cy: '12', r: '10' }],
    ['path', { d: 'M9.5 9a2.5 2.5 0 1 1 3.5 2.3c-.6.3-1 .9-1 1.6V14M12 17h.01' }],
  ],
};

export function stateIcon(shape: IconShape, className = 'state-icon'): SVGSVGElement {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `${className} icon-${shape}`);
  svg.setAttribute('data-icon', shape);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const [tag, attrs] of SHAPES[shape]) {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    svg.appendChild(el);
  }
  return svg;
}
