/** Every registration state renders its label, its own icon shape, "for …" and countdowns. */
import type { Problem, ProblemCode } from '../../src/types';
import { expect, iso, statusAt, T0, test, uiState } from './fixtures';

const problem = (code: ProblemCode, message: string, action: string, detail: string): Problem => ({
  code,
  message,
  action,
  detail,
});

const CASES = [
  {
    state: 'registered',
    label: 'Registered',
    icon: 'check',
    status: statusAt(),
    countdown: ['Next refresh', 'in 4 min 20 s'],
  },
  {
    state: 'registering',
    label: 'Registering…',
    icon: 'spinner',
    status: statusAt({
      state: 'registering',
      cause: 'started',
      next_refresh_in: null,
      expires_in: null,
      contact: null,
    }),
    countdown: null,
  },
  {
    state: 'retrying',
    label: 'Retrying',
    icon: 'arrows',
    status: statusAt({
      state: 'retrying',
      cause: 'retry_scheduled',
      next_refresh_in: null,
      next_attempt_in: 320,
      expires_in: null,
      problem: problem(
        'timeout',
        'The phone server did not answer.',
        'A firewall may be blocking SIP: try the TCP or TLS transport, or check the server address. Retrying automatically.',
        'no response to REGISTER after 32 s (Timer F)',
      ),
    }),
    countdown: ['Next attempt', 'in 20 s'],
  },
  {
    state: 'failed',
    label: 'Not registered — failed',
    icon: 'cross',
    status: statusAt({
      state: 'failed',
      cause: 'failed',
      next_refresh_in: null,
      expires_in: null,
      problem: problem(
        'wrong_password',
        'The phone server did not accept the password for this extension.',
        'Check the extension and password with your administrator, then enter the password again.',
        'SIP/2.0 401 Unauthorized after credentials were sent (realm "pbx")',
      ),
    }),
    countdown: null,
  },
  {
    state: 'offline',
    label: 'Offline',
    icon: 'cloud-off',
    status: statusAt({
      state: 'offline',
      cause: 'network_changed',
      next_refresh_in: null,
      expires_in: null,
      contact: null,
      local_address: null,
      problem: problem(
        'network_down',
        'This computer has no usable network.',
        'Check the network connection.',
        'no route to 198.18.0.1',
      ),
    }),
    countdown: null,
  },
  {
    state: 'unregistered',
    label: 'Unregistered',
    icon: 'minus',
    status: statusAt({
      state: 'unregistered',
      cause: 'user_request',
      next_refresh_in: null,
      expires_in: null,
    }),
    countdown: null,
  },
  {
    state: 'idle',
    label: 'Not started',
    icon: 'dots',
    status: statusAt({
      state: 'idle',
      cause: 'started',
      next_refresh_in: null,
      expires_in: null,
      contact: null,
    }),
    countdown: null,
  },
];

for (const c of CASES) {
  test(`state ${c.state}: label, icon shape, time in state, details`, async ({ page, vf }) => {
    await vf.open({ state: uiState({ status: c.status }) });
    await expect(page.locator('#state-label')).toHaveText(c.label);
    await expect(page.locator('#state-card')).toHaveAttribute('data-state', c.state);
    const icon = page.locator('#state-icon svg');
    await expect(icon).toHaveAttribute('data-icon', c.icon);
    expect(await icon.locator('path, circle, line').count()).toBeGreaterThan(0);
    await expect(page.locator('#state-since')).toHaveText('for 5 min');
    await expect(page.locator('#hdr-ext')).toHaveText('Extension 101');
    await expect(page.locator('#hdr-server')).toHaveText('pbx.example.com');
    await expect(page).toHaveTitle(`VICIfast — ${c.label}`);
    const countdown = page.locator('[data-row="countdown"]');
    if (c.countdown) {
      await expect(countdown.locator('dt')).toHaveText(c.countdown[0]!);
      await expect(countdown.locator('dd')).toHaveText(c.countdown[1]!);
    } else {
      await expect(countdown).toHaveCount(0);
    }
    await expect(page.locator('[data-row="transport"] dd')).toHaveText('UDP');
    // No local address (offline): the last interface name would be stale, so none is shown.
    const local = (c.status as { local_address?: string | null }).local_address;
    await expect(page.locator('[data-row="interface"] dd')).toHaveText(local ? 'wlan0' : '—');
    await vf.shot(`state-${c.state}`);
  });
}

test('icon shapes all differ between states', () => {
  const shapes = CASES.map((c) => c.icon);
  expect(new Set(shapes).size).toBe(shapes.length);
});

test('dark colour scheme follows the OS', async ({ page, vf }) => {
  await page.emulateMedia({ colorScheme: 'dark' });
  await vf.open({ state: uiState() });
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(bg).toBe('rgb(22, 25, 29)');
  await vf.shot('state-registered-dark');
});

test('"for" time and countdown advance each second on the local clock only', async ({
  page,
  vf,
}) => {
  await vf.open({ state: uiState() });
  const dd = page.locator('[data-row="countdown"] dd');
  await expect(dd).toHaveText('in 4 min 20 s');
  const before = (await vf.calls()).length;
  await page.clock.runFor(1000);
  await expect(dd).toHaveText('in 4 min 19 s');
  await page.clock.runFor(60_000);
  await expect(dd).toHaveText('in 3 min 19 s');
  await expect(page.locator('#state-since')).toHaveText('for 6 min');
  expect((await vf.calls()).length, 'no backend polling').toBe(before);
});

test('a refresh keeps the time in state; a state change restarts it', async ({ page, vf }) => {
  await vf.open({ state: uiState() });
  await expect(page.locator('#state-since')).toHaveText('for 5 min');
  await vf.emit(
    'status',
    statusAt({ at: iso(T0 + 5 * 60_000), cause: 'refreshed', next_refresh_in: 560 }),
  );
  await expect(page.locator('[data-row="countdown"] dd')).toHaveText('in 9 min 20 s');
  await expect(page.locator('#state-since')).toHaveText('for 5 min');
  await vf.emit(
    'status',
    statusAt({ at: iso(T0 + 5 * 60_000), state: 'registering', cause: 'network_changed' }),
  );
  await expect(page.locator('#state-since')).toHaveText('for 0 s');
});

test('other devices on the same extension are mentioned', async ({ page, vf }) => {
  await vf.open({
    state: uiState({
      status: statusAt({
        bindings: [
          { contact: 'sip:101@198.18.0.2:40000', expires_in: 600, ours: true, stale: false },
          { contact: 'sip:101@198.18.0.9:5060', expires_in: 100, ours: false, stale: false },
        ],
      }),
    }),
  });
  await expect(page.locator('[data-row="others"] dd')).toHaveText(
    '1 other device is registered for this extension',
  );
});
