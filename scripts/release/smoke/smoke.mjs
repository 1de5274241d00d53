// `import` of normclip in a fresh project: named exports, the same instance as require(), the
// same outputs.
import { createRequire } from 'node:module'
import * as esm from 'normclip'
import { MaxNorm, constraintCallback } from 'normclip'

const require = createRequire(import.meta.url)
const cjs = require('normclip')
const { digest } = require('./digest.cjs')
const names = (o) =>
  Object.keys(o)
    .filter((k) => k !== 'default' && k !== '__esModule')
    .sort()
    .join(',')
if (names(esm) !== names(cjs)) throw new Error(`ESM exports ${names(esm)}\nCJS exports ${names(cjs)}`)
// biome-ignore lint/performance/noDynamicNamespaceImportAccess: every export is compared, by name
for (const k of Object.keys(esm)) if (k !== 'default' && esm[k] !== cjs[k]) throw new Error(`ESM ${k} is not require()'s ${k}`)
if (typeof MaxNorm !== 'function' || typeof constraintCallback !== 'function') throw new Error('named imports missing')
console.log(JSON.stringify({ format: 'esm', exports: Object.keys(esm).length, ...digest(esm) }))
