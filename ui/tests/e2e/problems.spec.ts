/** Every problem code renders the backend's words, the UI's guidance and a details disclosure. */
import { guidanceFor, hasGuidance } from '../../src/guidance';
import { PROBLEM_CODES, type ProblemCode } from '../../src/types';
import { expect, statusAt, test, uiState } from './fixtures';

/** `code` may be one this window does not know yet: it is sent as any string would be. */
function failedWith(code: string) {
  return uiState({
    status: statusAt({
      state: [
        'wrong_password',
        'forbidden',
        'unknown_extension',
        'rejected',
        'credentials',
      ].includes(code)
        ? 'failed'
        : 'retrying',
      cause: 'failed',
      next_refresh_in: null,
      next_attempt_in: 330,
      problem: {
        code: code as ProblemCode,
        message: `Message for ${code}.`,
        action: `Action for ${code}.`,
        detail: `SIP/2.0 detail for ${code}\r\nAuthorization: Digest response="leaked-${code}"`,
      },
    }),
  });
}

const EXPECTED_GUIDANCE: Record<string, string> = {
  wrong_password: 'Ask your administrator for the right password and enter it again',
  timeout: 'A firewall may be blocking SIP — try TCP or TLS',
  network_down: 'Check Wi-Fi or the cable',
  tls_certificate: 'certificate',
  credentials: 'keychain',
  transport_error: 'network that keeps changing',
};

for (const code of PROBLEM_CODES) {
  test(`problem ${code}: message, action, guidance, technical details`, async ({ page, vf }) => {
    await vf.open({ state: failedWith(code) });
    const panel = page.locator('#problem');
    await expect(panel).toBeVisible();
    await expect(panel).toHaveAttribute('data-code', code);
    await expect(page.locator('#problem-title')).toHaveText(`Message for ${code}.`);
    const action = page.locator('#problem-action');
    if (hasGuidance(code)) await expect(action).toBeHidden();
    else await expect(action).toHaveText(`Action for ${code}.`);
    const g = guidanceFor(code);
    await expect(page.locator('#problem-guidance')).toHaveText(g.text);
    if (EXPECTED_GUIDANCE[code]) {
      await expect(page.locator('#problem-guidance')).toContainText(EXPECTED_GUIDANCE[code]);
    }
    const button = page.locator('#problem-button');
    if (g.button) await expect(button).toHaveText(g.button.label);
    else await expect(button).toBeHidden();

    const detail = page.locator('#problem-detail');
    await expect(detail).toBeHidden();
    await page.getByText('Technical details', { exact: true }).click();
    await expect(detail).toBeVisible();
    await expect(detail).toContainText(`detail for ${code}`);
    await expect(detail).toContainText('Authorization: <redacted>');
    await expect(detail).not.toContainText('leaked');
    await expect(page.locator('#problem-code')).toHaveText(code);
    if (
      ['wrong_password', 'timeout', 'network_down', 'tls_certificate', 'credentials'].includes(code)
    ) {
      await vf.shot(`problem-${code}`);
    }
  });
}

test('wrong password: the button opens Settings on the password field', async ({ page, vf }) => {
  await vf.open({ state: failedWith('wrong_password') });
  await page.getByRole('button', { name: 'Enter password' }).click();
  await expect(page.locator('#view-settings')).toBeVisible();
  await expect(page.locator('#f-password')).toBeFocused();
  await expect(page.locator('#f-password-hint')).toHaveText(
    'Leave blank to keep the saved password.',
  );
});

test('timeout: the button opens Settings on the transport', async ({ page, vf }) => {
  await vf.open({ state: failedWith('timeout') });
  await page.getByRole('button', { name: 'Change transport' }).click();
  await expect(page.locator('#f-transport')).toBeFocused();
});

test('server error: "Try again now" invokes register', async ({ page, vf }) => {
  await vf.open({ state: failedWith('server_error') });
  await page.getByRole('button', { name: 'Try again now' }).click();
  await expect.poll(async () => (await vf.calls('register')).length).toBe(1);
});

test('an unknown future code still shows words and details', async ({ page, vf }) => {
  await vf.open({ state: failedWith('quantum_flux') });
  await expect(page.locator('#problem-title')).toHaveText('Message for quantum_flux.');
  await expect(page.locator('#problem-button')).toHaveText('Copy technical details');
});

test('a network that keeps changing is pointed out', async ({ page, vf }) => {
  const { T0, iso } = await import('./fixtures');
  await vf.open({
    state: uiState({
      timeline: [1, 2, 3].map((i) => ({
        at: iso(T0 + i * 60_000),
        kind: 'network_changed',
        text: `Network changed (${i})`,
      })),
    }),
  });
  await expect(page.locator('#churn')).toContainText(
    'Your network changed 3 times in the last 10 minutes',
  );
  await vf.shot('network-churn');
});

test('a problem code the window does not know shows the engine action and the fallback advice', async ({
  page,
  vf,
}) => {
  await vf.open({ state: failedWith('some_future_code') });
  await expect(page.locator('#problem-action')).toHaveText('Action for some_future_code.');
  await expect(page.locator('#problem-guidance')).toHaveText(guidanceFor('some_future_code').text);
  await expect(page.locator('#problem-button')).toHaveText('Copy technical details');
});
