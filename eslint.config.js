// Lint rules, including the dependency directions of ARCHITECTURE.md ("Dependency direction").
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Builds a no-restricted-imports rule that forbids the given internal folders. */
function forbid(message, ...groups) {
  return { 'no-restricted-imports': ['error', { patterns: [{ group: groups, message }] }] };
}

const layers = ['system', 'config', 'crypto', 'local', 'relay', 'sync', 'daemon', 'cli'];
const above = (...allowed) => layers.filter((l) => !allowed.includes(l)).flatMap((l) => [`**/${l}/*`, `**/${l}/**`]);

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly', URL: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  { files: ['src/core/**/*.ts'], ignores: ['**/*.test.ts'], rules: forbid('core imports nothing internal', ...above()) },
  { files: ['src/system/**/*.ts', 'src/config/**/*.ts', 'src/crypto/**/*.ts', 'src/relay/backend.ts', 'src/relay/relay-clock.ts'], ignores: ['**/*.test.ts'], rules: forbid('system, config, crypto and the backend contract import only core', ...above()) },
  { files: ['src/local/**/*.ts'], ignores: ['**/*.test.ts'], rules: forbid('local sits above the relay protocol codecs', '**/relay/backends/**', '**/relay/maintenance/**', '**/sync/**', '**/daemon/**', '**/cli/**') },
  { files: ['src/relay/backends/**/*.ts'], ignores: ['**/*.test.ts'], rules: forbid('backends import only the contract and core', '**/relay/protocol/**', '**/relay/maintenance/**', '**/sync/**', '**/crypto/**', '**/daemon/**', '**/cli/**', '**/config/**', '**/local/**') },
  { files: ['src/relay/protocol/**/*.ts'], ignores: ['**/*.test.ts'], rules: forbid('the relay protocol sees only the Backend interface', '**/relay/backends/**', '**/relay/maintenance/**', '**/local/**', '**/sync/**', '**/daemon/**', '**/cli/**') },
  { files: ['src/sync/**/*.ts'], ignores: ['**/*.test.ts'], rules: forbid('sync never sees a concrete backend', '**/relay/backends/**', '**/daemon/**', '**/cli/**') },
  { files: ['src/sync/planner.ts', 'src/sync/policy.ts'], rules: forbid('the planner is pure: no I/O', 'node:fs', 'node:fs/*', 'node:net', 'node:child_process', '**/relay/backends/**', '**/daemon/**', '**/cli/**') },
  { files: ['src/daemon/**/*.ts'], ignores: ['**/*.test.ts'], rules: forbid('daemon does not depend on the CLI', '**/cli/**') },
);
