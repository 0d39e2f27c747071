import { describe, expect, it } from 'vitest';
import {
  cleanAgent,
  orderSoftphones,
  softphoneLook,
  softphoneName,
  softphoneRows,
  withSoftphone,
} from '../../src/softphone';
import { lookOf } from '../../src/model';
import {
  SOFTPHONE_PROBLEM_CODES,
  SOFTPHONE_STATES,
  type Softphone,
  type SoftphoneProblem,
  type SoftphoneProblemCode,
  type SoftphoneReport,
  type SoftphoneState,
} from '../../src/types';
import { T0 } from './fixtures';

function report(over: Partial<SoftphoneReport> = {}): SoftphoneReport {
  return {
    at: new Date(T0).toISOString(),
    account: 'default',
    state: 'answering',
    user_agent: 'MicroSIP/3.21.3',
    contact: 'sip:101@127.0.0.1:5062',
    transport: 'udp',
    expires_in: 600,
    problem: null,
    ...over,
  };
}

function softphone(
  over: Partial<Softphone> = {},
  status: Partial<SoftphoneReport> = {},
): Softphone {
  return {
    account: 'default',
    extension: '101',
    listen: '127.0.0.1:5070',
    listen_problem: null,
    status: report(status),
    ...over,
  };
}

const WRONG_PASSWORD: SoftphoneProblem = {
  code: 'wrong_password',
  message: 'Your softphone tried to sign in to VICIfast with a wrong password.',
  action:
    "In the softphone's account settings, enter the same password as for this extension in VICIfast.",
  detail: 'digest response mismatch for 101',
};

describe('softphoneName', () => {
  it('names the common softphones as agents know them', () => {
    expect(softphoneName('MicroSIP/3.21.3')).toBe('MicroSIP');
    expect(softphoneName('Z 5.6.1 v2.10.19.9')).toBe('Zoiper');
    expect(softphoneName('Zoiper rv2.10.11.4')).toBe('Zoiper');
    expect(softphoneName('Bria 6 release 6.5.3 stamp 110476')).toBe('Bria');
    expect(softphoneName('X-Lite release 5.8.3 stamp 102651')).toBe('X-Lite');
    expect(softphoneName('eyeBeam release 1011d stamp 40820')).toBe('eyeBeam');
    expect(softphoneName('Linphone Desktop/5.2.4 (Windows 10) LinphoneCore/5.3.1')).toBe(
      'Linphone',
    );
    expect(softphoneName('baresip v1.0.0 (x86_64/Linux)')).toBe('baresip');
  });

  it('falls back to the first word of an unknown one, and to nothing without one', () => {
    expect(softphoneName('AcmePhone/2.0 (Windows)')).toBe('AcmePhone');
    expect(softphoneName(null)).toBeNull();
    expect(softphoneName('   ')).toBeNull();
  });

  it('never repeats control or direction-override characters, nor a very long agent', () => {
    expect(cleanAgent('Micro\u202eSIP\u0007/3.21')).toBe('MicroSIP/3.21');
    const long = cleanAgent('x'.repeat(500)) ?? '';
    expect(long.length).toBe(80);
    expect(long.endsWith('…')).toBe(true);
  });
});

describe('softphoneLook', () => {
  it('answering: names the program and says calls ring in it', () => {
    const look = softphoneLook(softphone());
    expect(look.headline).toBe('Softphone: MicroSIP, answering');
    expect(look.summary).toBe('Calls to extension 101 ring in MicroSIP.');
    expect(look.tone).toBe('ok');
    expect(look.icon).toBe('check');
  });

  it('not answering: not running, start it, calls are refused meanwhile', () => {
    const look = softphoneLook(softphone({}, { state: 'not_answering' }));
    expect(look.headline).toBe('Softphone: MicroSIP, not running');
    expect(look.summary).toBe('Start it: calls are refused until it answers.');
    expect(look.tone).toBe('bad');
    expect(look.announcement).toContain('not running');
  });

  it('not signed in: says where the softphone must point', () => {
    const look = softphoneLook(
      softphone({}, { state: 'not_registered', user_agent: null, contact: null }),
    );
    expect(look.headline).toBe('Softphone: not signed in');
    expect(look.summary).toContain('127.0.0.1:5070 as its outbound proxy');
    expect(look.summary).toContain('calls are refused');
  });

  it('a problem comes first, with what to change and whether calls are refused', () => {
    const look = softphoneLook(
      softphone({}, { state: 'not_registered', problem: WRONG_PASSWORD, user_agent: null }),
    );
    expect(look.headline).toBe('Softphone: wrong password');
    expect(look.summary).toContain('wrong password');
    expect(look.summary).toContain('Calls are refused until it signs in to VICIfast.');
    expect(look.action).toBe(WRONG_PASSWORD.action);
    expect(look.problem?.code).toBe('wrong_password');
    expect(look.tone).toBe('bad');
  });

  it('a softphone that also registers directly but answers is a warning, not a failure', () => {
    const look = softphoneLook(
      softphone(
        {},
        {
          problem: {
            code: 'also_registered_directly',
            message: 'Your softphone also registers directly with the phone server.',
            action: 'Set the outbound proxy to VICIfast.',
            detail: 'sip:101@198.18.0.2:5062',
          },
        },
      ),
    );
    expect(look.headline).toBe('Softphone: also registers directly with the server');
    expect(look.tone).toBe('warn');
  });

  it('every state and problem code has its own headline; unknown ones still read', () => {
    const states = SOFTPHONE_STATES.map((state) => softphoneLook(softphone({}, { state })));
    expect(new Set(states.map((l) => l.headline)).size).toBe(SOFTPHONE_STATES.length);
    const problems = SOFTPHONE_PROBLEM_CODES.map(
      (code) => softphoneLook(softphone({}, { problem: { ...WRONG_PASSWORD, code } })).headline,
    );
    expect(new Set(problems).size).toBe(SOFTPHONE_PROBLEM_CODES.length);
    // A newer tray process may report values this window does not know yet.
    const newState = 'sleeping' as string as SoftphoneState;
    const newCode = 'new_code' as string as SoftphoneProblemCode;
    expect(softphoneLook(softphone({}, { state: newState })).tone).toBe('neutral');
    expect(
      softphoneLook(softphone({}, { problem: { ...WRONG_PASSWORD, code: newCode } })).headline,
    ).toBe('Softphone: its settings need a change');
  });

  it('no listener: says why, and shows no address to point at', () => {
    const s = softphone({
      listen: null,
      listen_problem: 'VICIfast cannot listen for the softphone on 127.0.0.1:5070 (udp).',
      status: null,
    });
    const look = softphoneLook(s);
    expect(look.headline).toBe('Softphone: VICIfast is not listening for it');
    expect(look.summary).toContain('127.0.0.1:5070');
    expect(look.tone).toBe('bad');
    expect(look.rows.find((r) => r.key === 'listen')).toBeUndefined();
  });

  it('before the first report: checking', () => {
    const look = softphoneLook(softphone({ status: null }));
    expect(look.state).toBe('waiting');
    expect(look.tone).toBe('busy');
  });
});

describe('softphoneRows', () => {
  it('tells where the softphone must point and how it is reached', () => {
    const rows = Object.fromEntries(softphoneRows(softphone()).map((r) => [r.key, r.value]));
    expect(rows['listen']).toBe('127.0.0.1:5070 (UDP or TCP)');
    expect(rows['sign-in']).toBe('Extension 101, with its password');
    expect(rows['contact']).toBe('sip:101@127.0.0.1:5062 (UDP)');
    expect(rows['agent']).toBe('MicroSIP/3.21.3');
  });
});

describe('orderSoftphones', () => {
  it("puts the app's own account first, then the others by extension", () => {
    const list = [
      softphone({ account: 'b', extension: '110' }),
      softphone({ account: 'c', extension: '102' }),
      softphone(),
    ];
    expect(orderSoftphones(list).map((s) => s.account)).toEqual(['default', 'c', 'b']);
  });
});

describe('withSoftphone', () => {
  it('a registered extension whose softphone refuses calls is not shown as all well', () => {
    const registered = lookOf('registered');
    const down = softphoneLook(softphone({}, { state: 'not_answering' }));
    const look = withSoftphone(registered, down);
    expect(look.label).toBe('Registered');
    expect(look.tone).toBe('warn');
    expect(look.summary).toContain('your softphone needs attention');
    expect(withSoftphone(registered, softphoneLook(softphone()))).toBe(registered);
    expect(withSoftphone(registered, null)).toBe(registered);
    // A worse registration state keeps its own words.
    expect(withSoftphone(lookOf('failed'), down)).toEqual(lookOf('failed'));
  });
});
