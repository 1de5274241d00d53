// Prints one closing line for the whole `npm test`: the cargo and vitest counts added up.
import { readFileSync } from 'node:fs'

const [cargoLog, vitestJson] = process.argv.slice(2)
let passed = 0
let failed = 0
let skipped = 0
for (const match of readFileSync(cargoLog, 'utf8').matchAll(/test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/g)) {
  passed += Number(match[1])
  failed += Number(match[2])
  skipped += Number(match[3])
}
const vitest = JSON.parse(readFileSync(vitestJson, 'utf8'))
passed += vitest.numPassedTests
failed += vitest.numFailedTests
skipped += vitest.numPendingTests + vitest.numTodoTests
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed > 0 ? 1 : 0)
