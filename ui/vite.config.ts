import { defineConfig } from 'vitest/config';

// Built for Tauri: frontendDist = "../ui/dist". Relative asset paths, no inline scripts or styles
// (strict CSP), no module-preload polyfill.
export default defineConfig({
  base: './',
  clearScreen: false,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2021',
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    sourcemap: false,
  },
  preview: { host: '127.0.0.1', port: 4319, strictPort: true },
  test: {
    include: ['tests/unit/**/*.test.ts'],
    environment: 'node',
  },
});
