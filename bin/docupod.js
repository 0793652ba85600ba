#!/usr/bin/env node
// Thin launcher so `npx docupod` works from the repo; the program itself is compiled to dist/.
import('../dist/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    console.error('docupod is not built yet: run `npm run build` first.');
    process.exit(1);
  }
  throw err;
});
