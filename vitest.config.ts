import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.test.ts'],
    setupFiles: ['__test__/support/setup.ts'],
    testTimeout: 60_000,
    // The native addon is loaded once per process: forks, not threads (workers per core by default).
    pool: 'forks',
  },
})
