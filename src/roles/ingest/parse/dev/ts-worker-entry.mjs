// Worker entry used only when the pool runs from TypeScript sources (vitest); see ts-hooks.mjs for why.
import { register } from 'node:module';
import { workerData } from 'node:worker_threads';

register('./ts-hooks.mjs', import.meta.url);
await import(workerData.entry);
