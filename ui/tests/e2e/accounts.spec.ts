/** Accounts added with the CLI are listed beside the app's own, and follow pushed updates. */
import type { OtherAccount } from '../../src/types';
import { expect, test, uiState } from './fixtures';

const other = (over: Partial<OtherAccount> = {}): OtherAccount => ({
  account: 'sales',
  extension: '202',
  server: 'pbx2.example.com',
  state: 'registered',
  problem: null,
  ...over,
});

test('no other accounts: no section', async ({ page, vf }) => {
  await vf.open({ state: uiState() });
  await expect(page.locator('#state-label')).toHaveText('Registered');
  await expect(page.locator('#other-accounts')).toBeHidden();
});

test('other accounts are listed with state and problem, and follow the accounts event', async ({
  page,
  vf,
}) => {
  await vf.open({
    state: uiState({
      other_accounts: [
        other(),
        other({
          account: 'night',
          extension: '303',
          state: 'failed',
          problem: 'The phone server did not accept the password for this extension.',
        }),
      ],
    }),
  });
  const section = page.locator('#other-accounts');
  await expect(section).toBeVisible();
  await expect(
    page.getByRole('heading', { name: 'Other extensions on this computer' }),
  ).toBeVisible();
  const sales = page.locator('[data-account="sales"]');
  await expect(sales).toHaveText('Extension 202 (pbx2.example.com): Registered');
  await expect(sales.locator('svg')).toHaveAttribute('data-icon', 'check');
  const night = page.locator('[data-account="night"]');
  await expect(night).toContainText('Extension 303 (pbx2.example.com): Not registered — failed');
  await expect(night).toContainText('did not accept the password');
  await expect(night.locator('svg')).toHaveAttribute('data-icon', 'cross');
  await vf.shot('other-accounts');

  await vf.emit('accounts', [other({ state: 'retrying', problem: 'No answer from the server.' })]);
  await expect(sales).toHaveText(
    'Extension 202 (pbx2.example.com): Retrying — No answer from the server.',
  );
  await expect(night).toHaveCount(0);
  await vf.emit('accounts', []);
  await expect(section).toBeHidden();
});
