import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': 'off',
    },
  },
  {
    // DESIGN.md: the core imports no protocol library.
    files: ['src/core/**/*.ts', 'src/mapping/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['@xmpp/*', 'ltx', 'sip.js', '**/adapters/**'] }],
    },
  },
  {
    // Adapters never import each other.
    files: ['src/adapters/sip/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/adapters/xmpp/**', '@xmpp/*', 'ltx'] }] },
  },
  {
    // PIDF bodies (RFC 3863) are XML: the SIP side reads them with the same XML tokenizer.
    files: ['src/adapters/sip/pidf.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/adapters/xmpp/**', '@xmpp/*'] }] },
  },
  {
    files: ['src/adapters/xmpp/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/adapters/sip/**', 'sip.js'] }] },
  },
);
