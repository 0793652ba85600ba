// Flat config: typescript-eslint's recommended rules plus the architecture's import boundaries, reported as warnings
// (style.md §2: they explain a rule; the build does not fail on them).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'web/**', 'coverage/**', 'test-results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', fetch: 'readonly', performance: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', AbortSignal: 'readonly', AbortController: 'readonly', Blob: 'readonly', Response: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'warn',
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['warn', { patterns: [{ group: ['../*', '!../core/*'], message: 'core imports nothing outside core (style.md §2)' }, { group: ['node:fs', 'node:net', 'node:http', 'pg'], message: 'core does no I/O' }] }],
    },
  },
  {
    files: ['src/roles/**/*.ts'],
    rules: {
      'no-restricted-imports': ['warn', { patterns: [{ group: ['**/modules/*'], message: 'roles do not import the module manager; take dependencies as arguments' }] }],
    },
  },
);
