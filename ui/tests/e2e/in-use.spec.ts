/** Another device took the extension: the window says so, names it, and offers the choice. */
import type { ExtensionInUse, StatusEvent } from '../../src/types';
import { expect, iso, statusAt, T0, test, uiState } from './fixtures';

const IN_USE: ExtensionInUse = {
  account: 'default',
  others: [
    {
      contact: 'sip:101@198.18.5.5:5062',
      address: '198.18.5.5:5062',
      user_agent: 'MicroSIP/3.21',
      expires_in: 300,
    },
  ],
  detected_by: 'binding_check',
  message:
    'Another device (MicroSIP/3.21 at 198.18.5.5:5062) is registered on this extension instead of this computer: calls go to whichever device registered last.',
  take_over_note:
    'Use this computer registers the extension here now. The other device takes it back at its next refresh unless it is signed out.',
};

function inUseStatus(over: Partial<StatusEvent> = {}) {
  return statusAt({
    cause: 'extension_in_use',
    problem: {
      code: 'extension_in_use',
      message: 'Another device is registered on this extension and took it from this computer.',
      action: 'Sign out the other device, or choose which one keeps the extension.',
      detail: 'the registrar lists sip:101@198.18.5.5:5062 instead of our binding',
    },
    extension_in_use: IN_USE,
    ...over,
  });
}

test('the panel names the other device and says what each choice does', async ({ page, vf }) => {
  await vf.open({ state: uiState({ status: inUseStatus() }) });
  const panel = page.locator('#in-use');
  await expect(panel).toBeVisible();
  await expect(page.locator('#in-use-message')).toContainText('MicroSIP/3.21 at 198.18.5.5:5062');
  await expect(page.locator('#in-use-note')).toContainText('takes it back at its next refresh');
  await expect(page.locator('#state-label')).toHaveText('Extension in use elsewhere');
  await expect(page.locator('#problem')).toHaveAttribute('data-code', 'extension_in_use');
  await expect(page.getByRole('button', { name: 'Register', exact: true })).toBeEnabled();
  await vf.shot('extension-in-use');
});

test('"Use this computer" takes the extension over; the panel goes when the status says so', async ({
  page,
  vf,
}) => {
  await vf.open({ state: uiState({ status: inUseStatus() }) });
  await page.getByRole('button', { name: 'Use this computer' }).click();
  await expect.poll(async () => (await vf.calls('take_over')).length).toBe(1);
  await expect(page.locator('#action-message')).toContainText('unless it is signed out');
  await vf.emit(
    'status',
    statusAt({ at: iso(T0 + 1000), cause: 'take_over', extension_in_use: null }),
  );
  await expect(page.locator('#in-use')).toBeHidden();
  await expect(page.locator('#state-label')).toHaveText('Registered');
});

test('"Stop here" unregisters', async ({ page, vf }) => {
  await vf.open({ state: uiState({ status: inUseStatus() }) });
  await page.getByRole('button', { name: 'Stop here' }).click();
  await expect.poll(async () => (await vf.calls('unregister')).length).toBe(1);
  expect(await vf.calls('take_over')).toHaveLength(0);
});

test('a status without the field (an older backend) shows no panel', async ({ page, vf }) => {
  await vf.open({ state: uiState() });
  await expect(page.locator('#state-label')).toHaveText('Registered');
  await expect(page.locator('#in-use')).toBeHidden();
});
