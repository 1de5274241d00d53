/**
 * Constraints to and from the identifiers and JSON of Keras 1, 2, 3 and TensorFlow.js.
 *
 * ```ts
 * serialize(new MaxNorm({ maxValue: 3 }))
 * // {module: 'keras.constraints', class_name: 'MaxNorm', config: {max_value: 3, axis: 0}, registered_name: null}
 * serialize(c, { format: 'keras2' })  // {class_name: 'MaxNorm', config: {max_value: 3, axis: 0}}
 * serialize(c, { format: 'tfjs' })    // {className: 'MaxNorm', config: {maxValue: 3, axis: 0}}
 * get('max_norm'); get('maxNorm'); get({ class_name: 'MaxNorm', config: { m: 3 } })  // all MaxNorm
 * ```
 */
import { CONSTRAINT_CLASSES, Constraint, FunctionConstraint, REGISTRY_PACKAGE, type ConstraintClassName } from './constraints'
import { describe } from './options'
import { requireTfjs, type ConfigDict, type Tensor, type TfjsConstraintLike } from './tfjs'

/**
 * Every string Keras 1/2/3 or tfjs accepts for a built-in constraint, with the class it names
 * (plus the `normclip>…` names our classes are registered under with tfjs).
 */
const IDENTIFIERS: Readonly<Record<string, ConstraintClassName>> = {
  // Keras 3: the class names and their snake_case forms.
  Constraint: 'Constraint',
  constraint: 'Constraint',
  MaxNorm: 'MaxNorm',
  max_norm: 'MaxNorm',
  MinMaxNorm: 'MinMaxNorm',
  min_max_norm: 'MinMaxNorm',
  NonNeg: 'NonNeg',
  non_neg: 'NonNeg',
  UnitNorm: 'UnitNorm',
  unit_norm: 'UnitNorm',
  // Keras 1 and 2 lowercase aliases, and Keras 2's RadialConstraint.
  maxnorm: 'MaxNorm',
  nonneg: 'NonNeg',
  unitnorm: 'UnitNorm',
  RadialConstraint: 'RadialConstraint',
  radial_constraint: 'RadialConstraint',
  // tfjs' camelCase identifiers.
  maxNorm: 'MaxNorm',
  minMaxNorm: 'MinMaxNorm',
  nonNeg: 'NonNeg',
  unitNorm: 'UnitNorm',
  radialConstraint: 'RadialConstraint',
  // The names normclip's classes are registered under with tfjs (what model.save writes).
  ...Object.fromEntries(Object.keys(CONSTRAINT_CLASSES).map((name) => [`${REGISTRY_PACKAGE}>${name}`, name as ConstraintClassName])),
}

/** Keras 1 option names, per class, and the name they have now. */
const KERAS1_OPTIONS: Partial<Record<ConstraintClassName, Record<string, string>>> = {
  MaxNorm: { m: 'max_value' },
  MinMaxNorm: { low: 'min_value', high: 'max_value' },
}

/** `keras3` (default), `keras2` (also Keras 1 and tfjs model JSON) or `tfjs` (tfjs in memory). */
export type SerializationFormat = 'keras3' | 'keras2' | 'tfjs'

/** Keras 3's `keras.constraints.serialize` output. */
export interface Keras3Dict {
  module: string | null
  class_name: string
  config: Record<string, unknown>
  registered_name: string | null
}
/** Keras 2 (and tfjs model JSON) form. */
export interface Keras2Dict {
  class_name: string
  config: Record<string, unknown>
}
/** tfjs' in-memory form (`serializeKerasObject`). */
export interface TfjsDict {
  className: string
  config: Record<string, unknown>
}

/**
 * A constraint dict in any of those forms: `class_name` or `className`, and `config`; Keras 3's
 * `module` and `registered_name` are accepted and ignored. Keras 1's flat form, `{ name:
 * 'MaxNorm', m: 3, axis: 0 }` (`low` / `high` for MinMaxNorm), is accepted too.
 */
export interface ConstraintDict {
  class_name?: string
  className?: string
  config?: Record<string, unknown> | null
  module?: string | null
  registered_name?: string | null
}

/** Keras 1's flat form: the class name and the arguments side by side (`m` for MaxNorm's bound). */
export interface Keras1Dict {
  name: string
  [argument: string]: unknown
}

/** Anything {@link get} / {@link deserialize} accept. */
export type ConstraintIdentifier = string | ConstraintDict | Keras1Dict | TfjsConstraintLike | ((w: Tensor) => Tensor) | null | undefined

/**
 * A constraint as Keras or tfjs JSON. Options that are not Keras' (`mode`, `epsilon`) appear
 * only when not at their defaults; Keras cannot load a config that has them.
 */
export function serialize(c: TfjsConstraintLike, options?: { format?: 'keras3' }): Keras3Dict
export function serialize(c: TfjsConstraintLike, options: { format: 'keras2' }): Keras2Dict
export function serialize(c: TfjsConstraintLike, options: { format: 'tfjs' }): TfjsDict
export function serialize(c: TfjsConstraintLike, options?: { format?: SerializationFormat }): Keras3Dict | Keras2Dict | TfjsDict
export function serialize(c: TfjsConstraintLike, options: { format?: SerializationFormat } = {}): Keras3Dict | Keras2Dict | TfjsDict {
  if (c === null || typeof c !== 'object' || typeof c.getClassName !== 'function' || typeof c.getConfig !== 'function') {
    throw new TypeError(`serialize: c: expected a constraint (with getClassName and getConfig), got ${describe(c)}`)
  }
  const format = options.format ?? 'keras3'
  const className = kerasClassName(c)
  const config = copyConfig(c.getConfig())
  switch (format) {
    case 'tfjs':
      return { className, config }
    case 'keras2':
      return { class_name: className, config: snakeCaseKeys(config) }
    case 'keras3': {
      const isKeras = className in CONSTRAINT_CLASSES
      return {
        module: isKeras ? 'keras.constraints' : null,
        class_name: className,
        config: snakeCaseKeys(config),
        registered_name: isKeras ? null : className,
      }
    }
    default:
      throw new RangeError(`serialize: format: expected 'keras3', 'keras2' or 'tfjs', got ${describe(format)}`)
  }
}

/**
 * A constraint from any identifier Keras 1/2/3 or tfjs accepts: a string id (`'max_norm'`,
 * `'maxnorm'`, `'MaxNorm'`, `'maxNorm'`, …), a Keras 3 / Keras 2 / Keras 1 / tfjs dict, a
 * constraint instance (returned as is), a plain function `(w) => tensor` (wrapped), or
 * null/undefined (→ null). Unknown ids throw, listing the known ones.
 */
export function deserialize(identifier: null | undefined): null
export function deserialize<T extends TfjsConstraintLike>(identifier: T): T
export function deserialize(identifier: ConstraintIdentifier): TfjsConstraintLike | null
export function deserialize(identifier: ConstraintIdentifier): TfjsConstraintLike | null {
  if (identifier === null || identifier === undefined) return null
  if (typeof identifier === 'string') return construct(classNameOf(identifier), {}, identifier)
  if (typeof identifier === 'function') return new FunctionConstraint(identifier)
  if (typeof identifier !== 'object') {
    throw new TypeError(`Could not interpret constraint identifier: expected a string, dict, constraint or function, got ${describe(identifier)}`)
  }
  if (typeof (identifier as TfjsConstraintLike).apply === 'function') return identifier as TfjsConstraintLike
  return fromDict(identifier as unknown as Record<string, unknown>)
}

/** Keras' `keras.constraints.get`: the same as {@link deserialize}. */
export function get(identifier: null | undefined): null
export function get<T extends TfjsConstraintLike>(identifier: T): T
export function get(identifier: ConstraintIdentifier): TfjsConstraintLike | null
export function get(identifier: ConstraintIdentifier): TfjsConstraintLike | null {
  return deserialize(identifier)
}

function fromDict(dict: Record<string, unknown>): Constraint {
  const name = dict['class_name'] ?? dict['className']
  // Keras 1's get_config wrote a flat dict, `{name: 'MaxNorm', m: 3, axis: 0}`, and its
  // constraints.get popped `name` and passed the rest as arguments.
  if (name === undefined && typeof dict['name'] === 'string' && !('config' in dict)) {
    const { name: keras1Name, ...options } = dict as { name: string } & Record<string, unknown>
    return construct(classNameOf(keras1Name), options, keras1Name)
  }
  if (typeof name !== 'string') {
    throw new TypeError(
      `Could not interpret constraint identifier: a dict needs 'class_name' (Keras 2/3), 'className' (tfjs) or 'name' (Keras 1), got ${JSON.stringify(dict)}`,
    )
  }
  const config = dict['config'] ?? {}
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new TypeError(`Could not interpret constraint identifier ${name}: config: expected an object, got ${describe(config)}`)
  }
  return construct(classNameOf(name), config as Record<string, unknown>, name)
}

function construct(className: ConstraintClassName, config: Record<string, unknown>, given: string): Constraint {
  const renames = KERAS1_OPTIONS[className] ?? {}
  const options: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(config)) {
    // Keras 1 wrote the class name into the config as `name`; tfjs adds `customObjects` on load.
    if (key === 'customObjects') continue
    if (key === 'name' && (value === given || value === className)) continue
    options[renames[key] ?? key] = value
  }
  if (className === 'Constraint') {
    if (Object.keys(options).length > 0) {
      throw new TypeError(`Constraint: takes no options, got ${Object.keys(options).join(', ')}`)
    }
    return new Constraint()
  }
  const cls = CONSTRAINT_CLASSES[className] as new (args: Record<string, unknown>) => Constraint
  return new cls(options)
}

function classNameOf(identifier: string): ConstraintClassName {
  const className = lookUp(identifier)
  if (className === undefined) {
    throw new RangeError(`Could not interpret constraint identifier: ${JSON.stringify(identifier)}; expected one of ${knownIdentifiers()}`)
  }
  return className
}

/** The class an id names; own keys only, so 'toString' and friends are unknown ids. */
function lookUp(identifier: string): ConstraintClassName | undefined {
  return Object.hasOwn(IDENTIFIERS, identifier) ? IDENTIFIERS[identifier] : undefined
}

/** The known ids grouped by class: `MaxNorm (max_norm, maxnorm, maxNorm, normclip>MaxNorm), …`. */
function knownIdentifiers(): string {
  return Object.keys(CONSTRAINT_CLASSES)
    .map((name) => {
      const aliases = Object.keys(IDENTIFIERS).filter((id) => IDENTIFIERS[id] === name && id !== name)
      return `${name} (${aliases.join(', ')})`
    })
    .join(', ')
}

/** Keras' name for a constraint's class: ours without the `normclip>` prefix, others as they say. */
function kerasClassName(c: TfjsConstraintLike): string {
  const name = c.getClassName()
  const known = lookUp(name)
  return known !== undefined && name.startsWith(`${REGISTRY_PACKAGE}>`) ? known : name
}

function copyConfig(config: ConfigDict): Record<string, unknown> {
  return JSON.parse(JSON.stringify(config)) as Record<string, unknown>
}

function snakeCaseKeys(config: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).map(([key, value]) => [key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), value]))
}

// ---------------------------------------------------------------------------------------------
// Loading tfjs' own class names as normclip's classes

/** tfjs' registry entries we replaced, to put back (an absent entry is recorded as undefined). */
const replacedEntries = new Map<string, unknown>()

/** The Keras names `useNativeConstraints` takes over (RadialConstraint has no tfjs class; it is added). */
const TAKEN_OVER: readonly ConstraintClassName[] = ['MaxNorm', 'MinMaxNorm', 'UnitNorm', 'NonNeg', 'RadialConstraint']

/**
 * Makes tfjs resolve the Keras class names `MaxNorm`, `MinMaxNorm`, `UnitNorm`, `NonNeg` (and
 * `RadialConstraint`, which tfjs lacks) to normclip's classes, so models loaded afterwards with
 * `tf.loadLayersModel` / `tf.models.modelFromJSON`, and layers given string ids (`kernelConstraint:
 * 'maxNorm'`), run their constraints on the native core. It replaces those entries of tfjs'
 * `SerializationMap`; models already built keep their constraints. Idempotent.
 *
 * Returns the undo function, also exported as {@link restoreTfjsConstraints}.
 *
 * ```ts
 * const undo = useNativeConstraints()
 * const model = await tf.loadLayersModel('file://model/model.json') // MaxNorm → normclip's MaxNorm
 * undo()                                                           // tfjs' own classes again
 * ```
 */
export function useNativeConstraints(): () => void {
  const classNameMap = registryMap()
  for (const name of TAKEN_OVER) {
    if (!replacedEntries.has(name)) replacedEntries.set(name, classNameMap[name])
    const cls = CONSTRAINT_CLASSES[name]
    classNameMap[name] = [cls, cls.fromConfig]
  }
  return restoreTfjsConstraints
}

/** Undoes {@link useNativeConstraints}: tfjs' own classes for those names again. Idempotent. */
export function restoreTfjsConstraints(): void {
  if (replacedEntries.size === 0) return
  const classNameMap = registryMap()
  for (const [name, entry] of replacedEntries) {
    if (entry === undefined) delete classNameMap[name]
    else classNameMap[name] = entry
  }
  replacedEntries.clear()
}

/** True while {@link useNativeConstraints} is in effect. */
export function usingNativeConstraints(): boolean {
  return replacedEntries.size > 0
}

function registryMap(): Record<string, unknown> {
  const tf = requireTfjs('useNativeConstraints')
  return tf.serialization.SerializationMap.getMap().classNameMap as Record<string, unknown>
}
