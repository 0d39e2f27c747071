// Defensive redaction of SIP credentials in trace text. The backend already redacts; this makes
// sure that nothing slips through to the screen or the clipboard even if it did not.

const AUTH_HEADER = /^(\s*)((?:proxy-)?authorization)([ \t]*:)/i;
const CONTINUATION = /^[ \t]/;
export const REDACTED = '<redacted>';

/**
 * Replaces the value of every `Authorization:` and `Proxy-Authorization:` header (any case, with
 * folded continuation lines) by `<redacted>`. Line endings are kept as they were.
 */
export function redactSip(text: string): string {
  const parts = text.split(/(\r\n|\n|\r)/);
  // parts alternate: line, separator, line, separator, ..., line
  const out: string[] = [];
  let inAuth = false;
  for (let i = 0; i < parts.length; i += 2) {
    const line = parts[i] ?? '';
    const sep = parts[i + 1] ?? '';
    if (inAuth && line.length > 0 && CONTINUATION.test(line)) {
      // A folded line of the header being redacted: drop it with its separator
      // (the separator before it was already written, so drop this one instead).
      if (out.length > 0) out.pop();
      out.push(sep);
      continue;
    }
    inAuth = false;
    const m = AUTH_HEADER.exec(line);
    if (m) {
      out.push(`${m[1] ?? ''}${m[2] ?? ''}${m[3] ?? ''} ${REDACTED}`, sep);
      inAuth = true;
    } else {
      out.push(line, sep);
    }
  }
  return out.join('');
}
