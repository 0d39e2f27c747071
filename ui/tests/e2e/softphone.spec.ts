/** The softphone behind VICIfast: whether calls ring in it, what to do when not, where it points. */
import type { Softphone, SoftphoneProblem, SoftphoneReport } from '../../src/types';
import { expect, iso, T0, test, uiState } from './fixtures';

function report(over: Partial<SoftphoneReport> = {}): SoftphoneReport {
  return {
    at: iso(T0),
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
  status: SoftphoneReport | null = report(),
  over: Partial<Softphone> = {},
): Softphone {
  return {
    account: 'default',
    extension: '101',
    listen: '127.0.0.1:5070',
    listen_problem: null,
    status,
    ...over,
  };
}

const WRONG_PASSWORD: SoftphoneProblem = {
  code: 'wrong_password',
  message: 'Your softphone tried to sign in to VICIfast with a wrong password.',
  action:
    "In the softphone's account settings, enter the same password as for this extension in VICIfast.",
  detail: 'digest response mismatch for 101 from 127.0.0.1:5062',
};

test('answering → not running → answering, each said at once and in the live region', async ({
  page,
  context,
  vf,
}) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], {
    origin: 'http://127.0.0.1:4319',
  });
  await vf.open({ state: uiState({ softphones: [softphone()] }) });
  const card = page.locator('#softphones .softphone[data-account="default"]');
  await expect(card).toHaveAttribute('data-state', 'answering');
  await expect(card.locator('.softphone-headline')).toHaveText('Softphone: MicroSIP, answering');
  await expect(card).toContainText('Calls to extension 101 ring in MicroSIP.');
  await expect(card.locator('[data-row="listen"] .row-value')).toHaveText(
    '127.0.0.1:5070 (UDP or TCP)',
  );
  await expect(card).toHaveClass(/tone-ok/);
  await vf.shot('softphone-answering');

  await vf.emit('softphones', [softphone(report({ at: iso(T0 + 1000), state: 'not_answering' }))]);
  await expect(card).toHaveAttribute('data-state', 'not_answering');
  await expect(card.locator('.softphone-headline')).toHaveText('Softphone: MicroSIP, not running');
  await expect(card.locator('.softphone-summary')).toHaveText(
    'Start it: calls are refused until it answers.',
  );
  await expect(card).toHaveClass(/tone-bad/);
  await expect(page.locator('#live')).toContainText('Softphone: MicroSIP, not running');
  // The registration itself is fine, but calls cannot ring: the state card says both.
  await expect(page.locator('#state-label')).toHaveText('Registered');
  await expect(page.locator('#state-card')).toHaveClass(/tone-warn/);
  await expect(page.locator('#state-summary')).toContainText('your softphone needs attention');
  await vf.shot('softphone-not-running');

  await vf.emit('softphones', [softphone(report({ at: iso(T0 + 2000) }))]);
  await expect(card).toHaveAttribute('data-state', 'answering');
  await expect(card).toHaveClass(/tone-ok/);
  await expect(page.locator('#live')).toContainText('Softphone: MicroSIP, answering');
  await expect(page.locator('#state-card')).toHaveClass(/tone-ok/);
  await expect(page.locator('#state-summary')).toHaveText(
    'Calls can reach this extension on this computer.',
  );

  // The address to type into the softphone can be copied.
  await card.getByRole('button', { name: 'Copy 127.0.0.1:5070' }).click();
  await expect(page.locator('#action-message')).toHaveText(
    "Copied 127.0.0.1:5070: enter it as the softphone's outbound proxy.",
  );
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('127.0.0.1:5070');
});

test('a window opened while the softphone is down shows it from get_state', async ({
  page,
  vf,
}) => {
  await vf.open({
    state: uiState({ softphones: [softphone(report({ state: 'not_answering' }))] }),
  });
  const card = page.locator('#softphones .softphone');
  await expect(card).toHaveAttribute('data-state', 'not_answering');
  await expect(card.locator('.softphone-headline')).toHaveText('Softphone: MicroSIP, not running');
});

test('wrong password in the softphone: what to change, and the technical detail', async ({
  page,
  vf,
}) => {
  await vf.open({
    state: uiState({
      softphones: [softphone(report({ state: 'not_registered', user_agent: null, contact: null }))],
    }),
  });
  const card = page.locator('#softphones .softphone');
  await expect(card.locator('.softphone-headline')).toHaveText('Softphone: not signed in');
  await expect(card).toContainText('127.0.0.1:5070 as its outbound proxy');

  await vf.emit('softphones', [
    softphone(
      report({
        at: iso(T0 + 1000),
        state: 'not_registered',
        user_agent: 'Z 5.6.1 v2.10.19.9',
        contact: null,
        problem: WRONG_PASSWORD,
      }),
    ),
  ]);
  await expect(card).toHaveAttribute('data-problem', 'wrong_password');
  await expect(card.locator('.softphone-headline')).toHaveText('Softphone: wrong password');
  await expect(card.locator('.softphone-summary')).toContainText(
    'Calls are refused until it signs in to VICIfast.',
  );
  await expect(card.locator('.softphone-action')).toHaveText(WRONG_PASSWORD.action);
  await expect(card.locator('[data-row="agent"] dd')).toHaveText('Z 5.6.1 v2.10.19.9');
  await card.getByText('Technical details').click();
  await expect(card.locator('code')).toHaveText('wrong_password');
  await expect(card.locator('pre')).toHaveText(WRONG_PASSWORD.detail);
  await vf.shot('softphone-wrong-password');

  // Fixed in the softphone: it signs in and answers.
  await vf.emit('softphones', [
    softphone(report({ at: iso(T0 + 2000), user_agent: 'Z 5.6.1 v2.10.19.9' })),
  ]);
  await expect(card.locator('.softphone-headline')).toHaveText('Softphone: Zoiper, answering');
  await expect(card).not.toHaveAttribute('data-problem', /.*/);
});

test('several accounts: each softphone names its extension, the app’s own first', async ({
  page,
  vf,
}) => {
  await vf.open({
    state: uiState({
      softphones: [
        softphone(
          report({ account: 'sales', state: 'not_answering', user_agent: 'Bria 6 release 6.5.3' }),
          {
            account: 'sales',
            extension: '202',
            listen: '127.0.0.1:5071',
          },
        ),
        softphone(),
      ],
    }),
  });
  const cards = page.locator('#softphones .softphone');
  await expect(cards).toHaveCount(2);
  await expect(cards.nth(0)).toHaveAttribute('data-account', 'default');
  await expect(cards.nth(0).locator('.softphone-extension')).toHaveText('Extension 101');
  await expect(cards.nth(1).locator('.softphone-extension')).toHaveText('Extension 202');
  await expect(cards.nth(1).locator('.softphone-headline')).toHaveText(
    'Softphone: Bria, not running',
  );
  await expect(cards.nth(1).locator('[data-row="listen"] .row-value')).toHaveText(
    '127.0.0.1:5071 (UDP or TCP)',
  );
});

test('VICIfast could not listen for the softphone: says why', async ({ page, vf }) => {
  const why =
    'VICIfast cannot listen for the softphone on 127.0.0.1:5070 (udp): Address already in use (os error 98). Another program uses this port (another VICIfast, or a softphone listening on it): choose another softphone port, or change the softphone’s own SIP port.';
  await vf.open({
    state: uiState({ softphones: [softphone(null, { listen: null, listen_problem: why })] }),
  });
  const card = page.locator('#softphones .softphone');
  await expect(card).toHaveAttribute('data-state', 'not_listening');
  await expect(card.locator('.softphone-headline')).toHaveText(
    'Softphone: VICIfast is not listening for it',
  );
  await expect(card.locator('.softphone-summary')).toHaveText(why);
});

test('an account without a softphone (or an older backend) shows no softphone panel', async ({
  page,
  vf,
}) => {
  await vf.open({ state: uiState() });
  await expect(page.locator('#state-label')).toHaveText('Registered');
  await expect(page.locator('#softphones')).toBeHidden();
  await vf.emit('softphones', [softphone()]);
  await expect(page.locator('#softphones')).toBeVisible();
  await vf.emit('softphones', []);
  await expect(page.locator('#softphones')).toBeHidden();
});

test('a softphone’s own text is shown as text, never as markup', async ({ page, vf }) => {
  await vf.open({
    state: uiState({
      softphones: [softphone(report({ user_agent: '<img src=x onerror=alert(1)>Evil/1.0' }))],
    }),
  });
  const card = page.locator('#softphones .softphone');
  await expect(card.locator('[data-row="agent"] dd')).toHaveText(
    '<img src=x onerror=alert(1)>Evil/1.0',
  );
  await expect(card.locator('img')).toHaveCount(0);
});
