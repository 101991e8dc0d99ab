// ESLint for the web client (flat config): the recommended rules plus a few that catch real bugs.
// Run by scripts/check-js.sh from the repository root (`-c tools/jscheck/eslint.config.mjs`: with
// -c the patterns are relative to the working directory); nothing here is served.
import js from '@eslint/js';
import globals from 'globals';

export default [
  {
    files: ['web-client/js/**/*.js', 'web-client/i18n/*.js', 'widget/widget.js'],
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: 'module',
      globals: { ...globals.browser },
    },
    rules: {
      ...js.configs.recommended.rules,
      'no-unused-vars': ['error', { args: 'after-used', argsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-undef': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-shadow-restricted-names': 'error',
      'no-self-compare': 'error',
      'no-template-curly-in-string': 'error',
      'no-unmodified-loop-condition': 'error',
      'no-unreachable-loop': 'error',
      'no-constructor-return': 'error',
      'no-use-before-define': ['error', { functions: false, classes: true, variables: false }],
      'array-callback-return': 'error',
      'no-new-wrappers': 'error',
      'no-implied-eval': 'error',
      'no-eval': 'error',
      radix: 'error',
    },
  },
  {
    files: ['tools/jscheck/*.mjs', 'tests/i18n/*.mjs'],
    languageOptions: { ecmaVersion: 2024, sourceType: 'module', globals: { ...globals.node } },
    rules: { ...js.configs.recommended.rules },
  },
];
