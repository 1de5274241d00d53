/**
 * Reading constructor arguments written the tfjs way (`{maxValue}`) or the Keras way
 * (`{max_value}`), rejecting unknown names so a typo (`maxvalue`) fails loudly instead of
 * silently falling back to a default.
 */
import * as native from './binding'

/**
 * Axes the norm is taken over, as in Keras: an int (negative counts from the end), a list,
 * `null` for one norm over the whole tensor, `[]` for none (each element is its own slice).
 */
export type Axis = number | number[] | null

/**
 * `'keras'`: Keras' exact formula (eps added to every norm, so in-bound slices shrink slightly).
 * `'projection'`: only out-of-bound slices move, exactly onto the bound (like `torch.renorm`).
 */
export type Mode = 'keras' | 'projection'

export const DEFAULT_MODE: Mode = 'keras'
/** Keras' `backend.epsilon()` (tfjs uses the same on cpu, wasm and tfjs-node); owned by the core. */
export const DEFAULT_EPSILON: number = native.DEFAULT_EPSILON

/** One option: its tfjs (camelCase) name and, when it differs, its Keras (snake_case) name. */
export interface OptionName {
  camel: string
  snake?: string
}

export const AXIS: OptionName = { camel: 'axis' }
export const MODE: OptionName = { camel: 'mode' }
export const EPSILON: OptionName = { camel: 'epsilon' }
export const MAX_VALUE: OptionName = { camel: 'maxValue', snake: 'max_value' }
export const MIN_VALUE: OptionName = { camel: 'minValue', snake: 'min_value' }
export const RATE: OptionName = { camel: 'rate' }

/**
 * The options in `args` keyed by their camelCase name (absent ones left out). Throws a TypeError
 * for a non-object, an unknown name, or the same option given under both names.
 */
export function readOptions(owner: string, args: unknown, names: readonly OptionName[]): Record<string, unknown> {
  if (args === undefined || args === null) return {}
  if (typeof args !== 'object' || Array.isArray(args)) {
    throw new TypeError(`${owner}: expected an options object, got ${describe(args)}`)
  }
  const byName = new Map<string, OptionName>()
  for (const name of names) {
    byName.set(name.camel, name)
    if (name.snake !== undefined) byName.set(name.snake, name)
  }
  const options: Record<string, unknown> = {}
  const seenAs: Record<string, string> = {}
  for (const [key, value] of Object.entries(args)) {
    const name = byName.get(key)
    if (name === undefined) {
      throw new TypeError(`${owner}: unknown option '${key}'; expected ${listNames(names)}`)
    }
    if (value === undefined) continue
    const previous = seenAs[name.camel]
    if (previous !== undefined && !sameValue(options[name.camel], value)) {
      throw new TypeError(`${owner}: '${previous}' and '${key}' are the same option and disagree; give one of them`)
    }
    seenAs[name.camel] = key
    options[name.camel] = value
  }
  return options
}

/** A number option, treating `null` as absent as tfjs does (`args.maxValue != null ? … : default`). */
export function numberOption(options: Record<string, unknown>, name: string, fallback: number): number {
  const value = options[name]
  return value === undefined || value === null ? fallback : (value as number)
}

/** Axis option; `null` is meaningful (one norm over the whole tensor), only absence takes the default. */
export function axisOption(options: Record<string, unknown>, fallback: Axis): Axis {
  const value = options['axis']
  if (value === undefined) return fallback
  return Array.isArray(value) ? [...(value as number[])] : (value as Axis)
}

function listNames(names: readonly OptionName[]): string {
  if (names.length === 0) return 'no options'
  return names.map((n) => (n.snake === undefined ? n.camel : `${n.camel} (or ${n.snake})`)).join(', ')
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return `an array`
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name
    return name && name !== 'Object' ? `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}` : 'an object'
  }
  return `${typeof value} ${String(value)}`
}
