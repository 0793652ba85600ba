import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The web role serves dist/ at `/`; hashed files under /assets get a long cache, index.html none.
// `npm run dev -w web` proxies the API to a server started with `npm start` (port 8080).
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 800,
    rollupOptions: {
      output: {
        manualChunks: (id) => {
          if (id.includes('node_modules/react') || id.includes('node_modules/scheduler')) return 'react';
          if (id.includes('node_modules/@mantine')) return 'mantine';
          return undefined;
        },
      },
    },
  },
  server: {
    proxy: Object.fromEntries(
      ['/api', '/v1', '/docs', '/openapi.json', '/healthz', '/readyz'].map((p) => [p, 'http://127.0.0.1:8080']),
    ),
  },
});
