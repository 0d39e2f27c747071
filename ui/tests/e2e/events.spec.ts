/** Pushed events: live region, timeline, trace (with redaction), commands. */
import { expect, iso, statusAt, T0, test, uiState } from './fixtures';

const SECRET_REGISTER = [
  'REGISTER sip:pbx.example.com SIP/2.0',
  'Via: SIP/2.0/UDP 198.18.0.2:40000;branch=z9hG4bK77',
  'authorization: Digest username="101", realm="pbx",',
  '  nonce="abc", response="0123456789abcdef-SECRET"',
  'Proxy-Authorization: Digest response="PROXY-SECRET"',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

test('the live region announces a pushed state change', async ({ page, vf }) => {
  await vf.open({ state: uiState() });
  const live = page.locator('#live');
  await expect(live).toHaveAttribute('aria-live', 'polite');
  await expect(live).toHaveText('');
  await vf.emit(
    'status',
    statusAt({
      at: iso(T0 + 5 * 60_000),
      state: 'failed',
      cause: 'failed',
      problem: {
        code: 'wrong_password',
        message: 'The password was not accepted.',
        action: 'x',
        detail: 'y',
      },
    }),
  );
  await expect(live).toContainText('Not registered — failed');
  await expect(live).toContainText('The password was not accepted.');
  await expect(page.locator('#state-label')).toHaveText('Not registered — failed');
  await expect(page.locator('#state-icon svg')).toHaveAttribute('data-icon', 'cross');

  await vf.emit(
    'status',
    statusAt({ at: iso(T0 + 5 * 60_000 + 1), state: 'registered', cause: 'registered' }),
  );
  await expect(live).toContainText('Registered. Calls can reach this extension');
  await expect(page.locator('#problem')).toBeHidden();
});

test('a stale status (older than the one shown) is ignored', async ({ page, vf }) => {
  await vf.open({ state: uiState() });
  await vf.emit('status', statusAt({ at: iso(T0 - 1000), state: 'offline' }));
  await vf.emit(
    'status',
    statusAt({
      at: iso(T0 + 1000),
      state: 'registered',
      cause: 'refreshed',
      local_address: '198.18.0.2:40002',
    }),
  );
  await expect(page.locator('[data-row="local"] dd')).toHaveText('198.18.0.2:40002');
  await expect(page.locator('#state-label')).toHaveText('Registered');
});

test('timeline: latest first, pushed events on top, bounded to 200', async ({ page, vf }) => {
  await vf.open({ state: uiState() });
  const items = page.locator('#timeline li');
  await expect(items).toHaveCount(2);
  await expect(items.first()).toContainText('Registered on pbx.example.com');
  await vf.emit('timeline', {
    at: iso(T0 + 60_000),
    kind: 'incoming_call',
    text: 'Incoming call from 102 reached this device',
  });
  await expect(items).toHaveCount(3);
  await expect(items.first()).toContainText('Incoming call from 102 reached this device');
  await expect(items.first().locator('time')).toHaveText('06:11:00');
  await expect(items.first()).toHaveAttribute('data-kind', 'incoming_call');

  await page.evaluate(async (t0) => {
    const vf = (
      window as unknown as { __vf: { emit: (e: string, p: unknown) => Promise<unknown> } }
    ).__vf;
    for (let i = 0; i < 210; i++) {
      await vf.emit('timeline', {
        at: new Date(t0 + 120_000 + i * 1000).toISOString(),
        kind: 'refreshed',
        text: `Refreshed #${i}`,
      });
    }
  }, T0);
  await expect(items).toHaveCount(200);
  await expect(items.first()).toContainText('Refreshed #209');
  await vf.shot('timeline');
});

test('trace: collapsed, redacted in the DOM and on the clipboard, bounded, clearable', async ({
  page,
  context,
  vf,
}) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], {
    origin: 'http://127.0.0.1:4319',
  });
  await vf.open({
    state: uiState({
      trace: [
        {
          at: iso(T0),
          account: 'default',
          direction: 'sent',
          remote: '198.18.0.1:5060',
          transport: 'udp',
          text: SECRET_REGISTER,
        },
      ],
    }),
  });
  const panel = page.locator('#trace-panel');
  await expect(panel).not.toHaveAttribute('open', '');
  await expect(page.locator('#trace-list')).toBeHidden();
  await expect(page.locator('#trace-count')).toHaveText('(1)');
  await page.getByText('SIP message trace (for support)').click();
  const list = page.locator('#trace-list');
  await expect(list).toBeVisible();
  await expect(list).toContainText('authorization: <redacted>');
  await expect(list).toContainText('Proxy-Authorization: <redacted>');
  await expect(list).not.toContainText('SECRET');
  await expect(list).not.toContainText('nonce="abc"');
  await expect(list).toContainText('Via: SIP/2.0/UDP 198.18.0.2:40000;branch=z9hG4bK77');

  await vf.emit('trace', {
    at: iso(T0 + 1000),
    account: 'default',
    direction: 'received',
    remote: '198.18.0.1:5060',
    transport: 'udp',
    text: 'SIP/2.0 200 OK\r\nAuthorization: Digest response="PUSHED-SECRET"\r\n\r\n',
  });
  await expect(page.locator('#trace-count')).toHaveText('(2)');
  await expect(list.locator('li').first()).toContainText('← Received from 198.18.0.1:5060 (UDP)');
  await expect(list).not.toContainText('PUSHED-SECRET');
  await vf.shot('trace-open');

  await page.getByRole('button', { name: 'Copy to clipboard' }).click();
  await expect(page.locator('#trace-message')).toHaveText('Copied 2 messages.');
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  expect(clip).toContain('REGISTER sip:pbx.example.com SIP/2.0');
  expect(clip).toContain('authorization: <redacted>');
  expect(clip).not.toContain('SECRET');
  expect(clip.indexOf('REGISTER')).toBeLessThan(clip.indexOf('200 OK'));

  await page.evaluate(async (t0) => {
    const vf = (
      window as unknown as { __vf: { emit: (e: string, p: unknown) => Promise<unknown> } }
    ).__vf;
    for (let i = 0; i < 305; i++) {
      await vf.emit('trace', {
        at: new Date(t0 + 2000 + i).toISOString(),
        account: 'default',
        direction: 'sent',
        remote: '198.18.0.1:5060',
        transport: 'udp',
        text: `OPTIONS sip:pbx SIP/2.0\r\nCSeq: ${i} OPTIONS\r\n\r\n`,
      });
    }
  }, T0);
  await expect(page.locator('#trace-count')).toHaveText('(300)');
  await expect(list.locator('li')).toHaveCount(300);

  await page.getByRole('button', { name: 'Clear' }).click();
  await expect(page.locator('#trace-count')).toHaveText('(0)');
  expect(await vf.calls('clear_trace')).toHaveLength(1);
});

test('Register and Unregister invoke their commands; failures are shown', async ({ page, vf }) => {
  await vf.open({
    state: uiState({
      status: statusAt({ state: 'unregistered', cause: 'user_request', next_refresh_in: null }),
    }),
    reject: { unregister: { code: 'engine', message: 'not running' } },
  });
  await expect(page.getByRole('button', { name: 'Unregister' })).toBeDisabled();
  await page.getByRole('button', { name: 'Register', exact: true }).click();
  await expect.poll(async () => (await vf.calls('register')).length).toBe(1);
  await vf.emit('status', statusAt({ at: iso(T0 + 1), state: 'registered' }));
  await expect(page.getByRole('button', { name: 'Register', exact: true })).toBeDisabled();
  await page.getByRole('button', { name: 'Unregister' }).click();
  await expect(page.locator('#action-message')).toHaveText('Could not unregister: not running');
});

test('a backend that cannot be reached is reported, not a blank window', async ({ page, vf }) => {
  await vf.open({
    state: null,
    reject: { get_state: { code: 'x', message: 'backend not ready' } },
  });
  await expect(page.locator('#load-error')).toContainText('backend not ready');
});

test('a new local address asks the backend for its interface again, a refresh does not', async ({
  vf,
}) => {
  await vf.open({ state: uiState() });
  expect(await vf.calls('get_state')).toHaveLength(1);
  await vf.emit('status', statusAt({ at: iso(T0 + 5 * 60_000), cause: 'refreshed' }));
  await vf.emit(
    'status',
    statusAt({
      at: iso(T0 + 5 * 60_000 + 1),
      cause: 'registered',
      local_address: '198.18.1.9:41000',
    }),
  );
  await expect.poll(async () => (await vf.calls('get_state')).length).toBe(2);
});
