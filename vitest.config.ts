import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.test.ts'],
    testTimeout: 60_000,
    // The native addon is loaded once per worker; two workers match the machine's two cores.
    pool: 'forks',
    maxWorkers: 2,
  },
})
