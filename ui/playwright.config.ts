import { defineConfig } from '@playwright/test';

// Runs against the BUILT page (ui/dist, served by `vite preview`) in Debian's chromium.
// No browser is downloaded: install it with
//   apt-get install -y --no-install-recommends chromium fonts-dejavu-core
export default defineConfig({
  testDir: 'tests/e2e',
  testMatch: '**/*.spec.ts',
  outputDir: 'test-results',
  fullyParallel: true,
  workers: process.env['CI'] ? 1 : 2,
  retries: 0,
  reporter: [['list']],
  timeout: 30_000,
  expect: { timeout: 5_000 },
  webServer: {
    command: 'npx vite preview --host 127.0.0.1 --port 4319 --strictPort',
    url: 'http://127.0.0.1:4319/',
    reuseExistingServer: false,
    timeout: 60_000,
  },
  use: {
    baseURL: 'http://127.0.0.1:4319/',
    viewport: { width: 420, height: 640 },
    locale: 'en-GB',
    timezoneId: 'UTC',
    colorScheme: 'light',
    launchOptions: {
      executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-dev-shm-usage',
        '--disable-component-update',
        '--no-first-run',
      ],
    },
  },
  projects: [{ name: 'chromium', use: { browserName: 'chromium' } }],
});
