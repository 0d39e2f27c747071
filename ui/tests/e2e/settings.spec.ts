/** Settings: first run, validation next to each field, backend field errors, saving the password safely. */
import { expect, settings, test, uiState, type Page } from './fixtures';

async function openSettings(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Settings' }).click();
  await expect(page.locator('#view-settings')).toBeVisible();
}

test('first run shows the form with an explanation and no Cancel', async ({ page, vf }) => {
  await vf.open({
    state: uiState({ settings: null, has_password: false, status: null, timeline: [] }),
  });
  await expect(page.locator('#view-settings')).toBeVisible();
  await expect(page.locator('#view-status')).toBeHidden();
  await expect(page.locator('#first-run')).toContainText('Welcome to VICIfast');
  await expect(page.locator('#btn-cancel')).toBeHidden();
  await expect(page.locator('#f-server')).toBeFocused();
  await expect(page.locator('#f-expires')).toHaveValue('300');
  await expect(page.locator('#f-password-hint')).toBeHidden();
  await vf.shot('first-run');

  await page.getByLabel('Server', { exact: true }).fill('pbx.example.com');
  await page.getByLabel('Extension', { exact: true }).fill('101');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('#f-password-error')).toHaveText(
    'Enter the password for this extension.',
  );
  await page.getByLabel('Password', { exact: true }).fill('s3cret!');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('#view-status')).toBeVisible();
  const [call] = await vf.calls('save_settings');
  expect(call?.args).toMatchObject({
    password: 's3cret!',
    settings: { server: 'pbx.example.com', extension: '101' },
  });
});

test('every control has a label', async ({ page, vf }) => {
  await vf.open({ state: uiState() });
  await openSettings(page);
  for (const label of [
    'Server',
    'Extension',
    'Password',
    'Transport',
    'Port',
    'Authentication user',
    'Domain',
    'Outbound proxy',
    'Requested expiry (seconds)',
    'Start VICIfast when I log in',
  ]) {
    await expect(page.getByLabel(label, { exact: true })).toBeVisible();
  }
  await expect(page.locator('#f-password')).toHaveAttribute('type', 'password');
});

test('client-side validation shows clear messages next to the fields and does not save', async ({
  page,
  vf,
}) => {
  await vf.open({ state: uiState() });
  await openSettings(page);
  await page.getByLabel('Server', { exact: true }).fill('https://pbx.example.com');
  await page.getByLabel('Extension', { exact: true }).fill('10 1');
  await page.getByLabel('Port', { exact: true }).fill('70000');
  await page.getByLabel('Requested expiry (seconds)', { exact: true }).fill('30');
  await page.getByLabel('Outbound proxy', { exact: true }).fill('sip:101@proxy');
  await page.getByRole('button', { name: 'Save' }).click();

  await expect(page.locator('#f-server-error')).toContainText('not a web address');
  await expect(page.locator('#f-extension-error')).toHaveText(
    'The extension cannot contain spaces.',
  );
  await expect(page.locator('#f-port-error')).toContainText('1 to 65535');
  await expect(page.locator('#f-expires-error')).toContainText('60 to 3600');
  await expect(page.locator('#f-outbound_proxy-error')).toContainText('without an extension');
  await expect(page.locator('#f-port')).toHaveAttribute('aria-invalid', 'true');
  await expect(page.locator('#f-server')).toBeFocused();
  await expect(page.getByLabel('Port', { exact: true })).toHaveAccessibleDescription(/1 to 65535/);
  await vf.shot('settings-validation');
  expect(await vf.calls('save_settings')).toHaveLength(0);

  // Fixing a field clears its message as you type.
  await page.getByLabel('Port', { exact: true }).fill('5070');
  await expect(page.locator('#f-port-error')).toBeHidden();
});

test('a backend validation error is shown on its field', async ({ page, vf }) => {
  await vf.open({
    state: uiState(),
    reject: {
      save_settings: {
        code: 'invalid_settings',
        message: 'The server name does not resolve.',
        field: 'server',
      },
    },
  });
  await openSettings(page);
  await page.getByLabel('Server', { exact: true }).fill('pbx.invalid');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('#f-server-error')).toHaveText('The server name does not resolve.');
  await expect(page.locator('#f-server')).toBeFocused();
  await expect(page.locator('#view-settings')).toBeVisible();
});

test('a backend error without a field is shown above the form', async ({ page, vf }) => {
  await vf.open({
    state: uiState(),
    reject: { save_settings: { code: 'keychain', message: 'The keychain is locked.' } },
  });
  await openSettings(page);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('#form-error')).toHaveText('Could not save: The keychain is locked.');
});

test('saving sends the password to save_settings and never to web storage', async ({
  page,
  vf,
}) => {
  await vf.open({ state: uiState() });
  await openSettings(page);
  await expect(page.locator('#f-password')).toHaveValue('');
  await expect(page.locator('#f-password-hint')).toBeVisible();
  await page.getByLabel('Transport', { exact: true }).selectOption('tls');
  await expect(page.getByLabel('Port', { exact: true })).toHaveAttribute('placeholder', '5061');
  await page.getByLabel('Port', { exact: true }).fill('5061');
  await page.getByLabel('Start VICIfast when I log in', { exact: true }).check();
  await page.getByLabel('Password', { exact: true }).fill('Pa55-word-XYZ');
  await page.getByLabel('Password', { exact: true }).press('Enter');

  await expect(page.locator('#view-status')).toBeVisible();
  await expect(page.locator('#action-message')).toHaveText('Settings saved.');
  // Back at the top, where the state and any problem panel are, not where the form ended.
  expect(await page.evaluate(() => window.scrollY)).toBe(0);
  const calls = await vf.calls('save_settings');
  expect(calls).toHaveLength(1);
  expect(calls[0]?.args).toEqual({
    settings: { ...settings, transport: 'tls', port: 5061, start_at_login: true },
    password: 'Pa55-word-XYZ',
  });

  const stored = await page.evaluate(() => {
    const dump = (s: Storage) =>
      Array.from({ length: s.length }, (_, i) => `${s.key(i)}=${s.getItem(s.key(i) ?? '')}`).join(
        '\n',
      );
    return `${dump(localStorage)}\n${dump(sessionStorage)}\n${document.cookie}`;
  });
  expect(stored).not.toContain('Pa55-word-XYZ');
  expect(await page.locator('#f-password').inputValue()).toBe('');

  // Blank password on the next save keeps the stored one.
  await openSettings(page);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('#view-status')).toBeVisible();
  const again = await vf.calls('save_settings');
  expect(again[1]?.args).toMatchObject({ password: null });
});

test('keyboard: Settings opens with Enter, Escape goes back, Tab order follows the form', async ({
  page,
  vf,
}) => {
  await vf.open({ state: uiState() });
  await page.locator('#btn-settings').focus();
  await page.keyboard.press('Enter');
  await expect(page.locator('#view-settings')).toBeVisible();
  await page.keyboard.press('Tab');
  await expect(page.locator('#f-server')).toBeFocused();
  await page.keyboard.press('Tab');
  await expect(page.locator('#f-extension')).toBeFocused();
  await page.keyboard.press('Tab');
  await expect(page.locator('#f-password')).toBeFocused();
  await page.keyboard.press('Tab');
  await expect(page.locator('#f-transport')).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(page.locator('#view-status')).toBeVisible();
  await expect(page.locator('#state-label')).toBeFocused();
});

test('the focus ring is visible on buttons', async ({ page, vf }) => {
  await vf.open({ state: uiState() });
  await page.locator('#btn-settings').focus();
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Tab');
  const outline = await page
    .locator('#btn-settings')
    .evaluate((el) => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth);
  expect(outline).toBe('solid 3px');
});
