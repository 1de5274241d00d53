// tsc compiles src/ to dist/ but does not copy the napi-generated loader and the addon
// beside it; the compiled wrapper requires './native/index.js', so they go along.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

const from = 'src/native'
const to = 'dist/native'
mkdirSync(to, { recursive: true })
for (const name of readdirSync(from)) {
  if (name === 'index.js' || name === 'index.d.ts' || name.endsWith('.node')) {
    copyFileSync(join(from, name), join(to, name))
  }
}
