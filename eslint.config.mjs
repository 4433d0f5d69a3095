// TypeScript lint configured to the house style (shared/style/house-style.md): the recommended
// rules, plus the few that catch real bugs in a relay that must fail closed.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'build/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A dropped promise is a relay or a shutdown step nobody waits for; `void` marks the deliberate ones.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // The code already imports types with `import type` or `type` specifiers; keep it so.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // Matching control characters is the point where it happens (input checks, ANSI colour tests).
      'no-control-regex': 'off',
      // A variable bound late for a closure declared before it (runSidecar's admit) is not a const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // The native boundary loads the compiled addon by path; only require() can do that.
    files: ['src/native.ts', 'src/native/**/*.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // tap queues t.test() itself and reports a failing subtest; every finding here was a t.test() call
      // (417 of them), and the rule cannot tell tap's method from other calls.
      '@typescript-eslint/no-floating-promises': 'off',
      // Parsed YAML and TOML documents are walked by path in assertions; typing each shape adds nothing.
      '@typescript-eslint/no-explicit-any': 'off',
      // Column-aligned log and help text is matched as printed.
      'no-regex-spaces': 'off',
      // Untyped CommonJS packages, and the addon probed before a suite decides to skip.
      '@typescript-eslint/no-require-imports': ['error', { allow: ['^parse-prometheus-text-format$', '/src/native/index\.js$'] }],
    },
  },
);
