/**
 * Runs one attack of `attacks.ts` in this process and reports it on stdout: `PASS <report>` and
 * exit code 0, or `FAIL <message>` and exit code 1. Started by `../adversarial.test.ts` as
 * `node --expose-gc --import tsx run.ts <name>`; a crash shows up there as this process's signal.
 */
import { attacks, resourceAttacks } from './attacks'

const name = process.argv[2] ?? ''
const attack = attacks[name] ?? resourceAttacks[name]
if (attack === undefined) {
  console.log(`FAIL no attack named ${JSON.stringify(name)}`)
  process.exit(1)
}
attack().then(
  (report) => {
    console.log(`PASS ${report}`)
    process.exit(0)
  },
  (error: unknown) => {
    console.log(`FAIL ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    process.exit(1)
  },
)
