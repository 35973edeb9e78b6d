import { defineConfig } from 'vitest/config';

// The dashboard is served by `oms serve` from dist/ on the same origin as the API and the
// WebSocket. In development, Vite proxies both to a running OMS (OMS_URL, default :8080).
const target = process.env.OMS_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  // React's automatic JSX runtime through esbuild: no extra plugin needed.
  esbuild: { jsx: 'automatic' },
  build: {
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      '/api': { target, changeOrigin: false },
      '/ws': { target: target.replace(/^http/, 'ws'), ws: true },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
