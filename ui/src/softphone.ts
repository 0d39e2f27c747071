// What the window shows of each account's softphone (the program that rings when a call comes
// in): whether calls reach it, what to change when they cannot, and where it must point. No DOM.

import { transportName, type DetailRow, type IconShape, type StateLook, type Tone } from './model';
import type { Softphone, SoftphoneProblem } from './types';

export interface SoftphoneLook {
  account: string;
  extension: string;
  /** "Softphone: MicroSIP, answering" */
  headline: string;
  /** One sentence: do calls reach it, and if not what to do. */
  summary: string;
  /** What to change in the softphone, when its settings are at fault. */
  action: string | null;
  tone: Tone;
  icon: IconShape;
  /** The state, or "not_listening" / "waiting" when VICIfast has no report. */
  state: string;
  problem: SoftphoneProblem | null;
  rows: SoftphoneRow[];
  /** Spoken by the live region when it changes. */
  announcement: string;
}

/** A line of the softphone's card; `copy` is text the agent may copy into the softphone. */
export interface SoftphoneRow extends DetailRow {
  copy?: string;
}

/** Longest part of another program's User-Agent the window repeats. */
const MAX_AGENT = 80;

/** Control, zero-width and direction-override characters: never shown from another program. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** Another program's text, made safe and short enough to show. */
export function cleanAgent(text: string | null | undefined): string | null {
  if (!text) return null;
  const clean = text.replace(UNSAFE, '').replace(/\s+/g, ' ').trim();
  if (!clean) return null;
  return clean.length > MAX_AGENT ? `${clean.slice(0, MAX_AGENT - 1)}…` : clean;
}

/** Common softphones by their User-Agent, with the names agents know them by. */
const KNOWN_SOFTPHONES: [RegExp, string][] = [
  [/microsip/i, 'MicroSIP'],
  [/zoiper/i, 'Zoiper'],
  // Zoiper 5 says only "Z 5.6.1 v2.10.19.9".
  [/^Z \d/, 'Zoiper'],
  [/^bria\b/i, 'Bria'],
  [/x-lite/i, 'X-Lite'],
  [/eyebeam/i, 'eyeBeam'],
  [/linphone/i, 'Linphone'],
  [/baresip/i, 'baresip'],
  [/jitsi/i, 'Jitsi'],
  [/phoner/i, 'PhonerLite'],
  [/grandstream wave/i, 'Grandstream Wave'],
];

/** The softphone's name from its User-Agent: "MicroSIP/3.21.3" → "MicroSIP". */
export function softphoneName(userAgent: string | null | undefined): string | null {
  const agent = cleanAgent(userAgent);
  if (!agent) return null;
  for (const [pattern, name] of KNOWN_SOFTPHONES) if (pattern.test(agent)) return name;
  const first = agent.split(/[\s/(;]/, 1)[0] ?? '';
  return first.length > 0 ? first.slice(0, 32) : null;
}

const PROBLEM_HEADLINES: Record<string, string> = {
  wrong_password: 'wrong password',
  wrong_extension: 'set up for another extension',
  too_many_attempts: 'too many wrong passwords',
  also_registered_directly: 'also registers directly with the server',
};

/** Why calls are refused meanwhile, when the state refuses them. */
function refusedUntil(state: string): string | null {
  if (state === 'not_answering') return 'Calls are refused until it answers.';
  if (state === 'not_registered') return 'Calls are refused until it signs in to VICIfast.';
  return null;
}

/** The look of one account's softphone. */
export function softphoneLook(s: Softphone): SoftphoneLook {
  const status = s.status;
  const name = softphoneName(status?.user_agent);
  const base = {
    account: s.account,
    extension: s.extension,
    action: null as string | null,
    problem: status?.problem ?? null,
    rows: softphoneRows(s),
  };
  let look: Omit<SoftphoneLook, keyof typeof base | 'announcement'>;
  if (s.listen_problem) {
    look = {
      headline: 'Softphone: VICIfast is not listening for it',
      summary: s.listen_problem,
      tone: 'bad',
      icon: 'cross',
      state: 'not_listening',
    };
  } else if (!status) {
    look = {
      headline: 'Softphone: checking…',
      summary: 'VICIfast is starting to listen for your softphone.',
      tone: 'busy',
      icon: 'spinner',
      state: 'waiting',
    };
  } else if (status.problem) {
    const p = status.problem;
    const refused = refusedUntil(status.state);
    look = {
      headline: `Softphone: ${PROBLEM_HEADLINES[p.code] ?? 'its settings need a change'}`,
      summary: refused ? `${p.message} ${refused}` : p.message,
      tone: p.code === 'also_registered_directly' && !refused ? 'warn' : 'bad',
      icon: p.code === 'also_registered_directly' && !refused ? 'arrows' : 'cross',
      state: status.state,
    };
    base.action = p.action;
  } else {
    look = stateLook(status.state, name, s.extension, s.listen);
  }
  return { ...base, ...look, announcement: `${look.headline}. ${look.summary}` };
}

function stateLook(
  state: string,
  name: string | null,
  extension: string,
  listen: string | null,
): Pick<SoftphoneLook, 'headline' | 'summary' | 'tone' | 'icon' | 'state'> {
  const named = (words: string): string => `Softphone: ${name ? `${name}, ` : ''}${words}`;
  switch (state) {
    case 'answering':
      return {
        headline: named('answering'),
        summary: `Calls to extension ${extension} ring in ${name ?? 'your softphone'}.`,
        tone: 'ok',
        icon: 'check',
        state,
      };
    case 'checking':
      return {
        headline: named('checking…'),
        summary: `VICIfast is checking that ${name ?? 'your softphone'} answers; calls go to it meanwhile.`,
        tone: 'busy',
        icon: 'spinner',
        state,
      };
    case 'not_answering':
      return {
        headline: named('not running'),
        summary: 'Start it: calls are refused until it answers.',
        tone: 'bad',
        icon: 'cross',
        state,
      };
    case 'not_registered':
      return {
        headline: 'Softphone: not signed in',
        summary: `Start your softphone${listen ? ` with ${listen} as its outbound proxy` : ''}: calls are refused until it signs in to VICIfast.`,
        tone: 'bad',
        icon: 'cross',
        state,
      };
    default:
      return {
        headline: named(state.replace(/_/g, ' ')),
        summary: 'VICIfast reported a softphone state this window does not know.',
        tone: 'neutral',
        icon: 'question',
        state,
      };
  }
}

/** Where the softphone must point and how it is reached: what the agent needs to fix it. */
export function softphoneRows(s: Softphone): SoftphoneRow[] {
  const rows: SoftphoneRow[] = [];
  if (s.listen) {
    rows.push({
      key: 'listen',
      label: 'Outbound proxy',
      value: `${s.listen} (UDP or TCP)`,
      copy: s.listen,
    });
  }
  rows.push({
    key: 'sign-in',
    label: 'Sign in as',
    value: `Extension ${s.extension}, with its password`,
  });
  const status = s.status;
  if (status?.contact) {
    const over = status.transport ? ` (${transportName(status.transport)})` : '';
    rows.push({ key: 'contact', label: 'Reached at', value: `${status.contact}${over}` });
  }
  const agent = cleanAgent(status?.user_agent);
  if (agent) rows.push({ key: 'agent', label: 'Program', value: agent });
  return rows;
}

/** The app's own account first, then the others by extension. */
export function orderSoftphones(list: readonly Softphone[], ownAccount = 'default'): Softphone[] {
  return [...list].sort((a, b) => {
    if (a.account === ownAccount) return b.account === ownAccount ? 0 : -1;
    if (b.account === ownAccount) return 1;
    return a.extension.localeCompare(b.extension, undefined, { numeric: true });
  });
}

/**
 * The registration's look with the softphone's health: "registered" alone would say calls reach
 * the agent while the softphone that should ring refuses them.
 */
export function withSoftphone(look: StateLook, softphone: SoftphoneLook | null): StateLook {
  if (!softphone || softphone.tone !== 'bad' || look.tone !== 'ok') return look;
  return {
    ...look,
    tone: 'warn',
    summary:
      'Registered with the phone server, but calls cannot ring: your softphone needs attention.',
  };
}
