import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { describe, expect, it } from 'vitest'
import {
  Constraint,
  FunctionConstraint,
  MaxNorm,
  MinMaxNorm,
  NonNeg,
  RadialConstraint,
  UnitNorm,
  deserialize,
  get,
  serialize,
  type Keras3Dict,
  type SerializationFormat,
} from '../src/index'

/** Every string id Keras 1/2/3 or tfjs accepts, and the class it names. */
const STRING_IDS: Array<[string, new () => Constraint]> = [
  ['max_norm', MaxNorm],
  ['maxnorm', MaxNorm],
  ['MaxNorm', MaxNorm],
  ['maxNorm', MaxNorm],
  ['min_max_norm', MinMaxNorm],
  ['MinMaxNorm', MinMaxNorm],
  ['minMaxNorm', MinMaxNorm],
  ['non_neg', NonNeg],
  ['nonneg', NonNeg],
  ['NonNeg', NonNeg],
  ['nonNeg', NonNeg],
  ['unit_norm', UnitNorm],
  ['unitnorm', UnitNorm],
  ['UnitNorm', UnitNorm],
  ['unitNorm', UnitNorm],
  ['radial_constraint', RadialConstraint],
  ['RadialConstraint', RadialConstraint],
  ['constraint', Constraint],
  ['Constraint', Constraint],
  ['normclip>MaxNorm', MaxNorm],
]

describe('get / deserialize: string ids', () => {
  for (const [id, cls] of STRING_IDS) {
    it(`${id} → ${cls.name} with Keras' defaults`, () => {
      const c = get(id)
      expect(c).toBeInstanceOf(cls)
      expect(c!.constructor).toBe(cls)
      expect(deserialize(id)!.constructor).toBe(cls)
    })
  }

  it('defaults are the Keras ones', () => {
    expect(get('max_norm')!.getConfig()).toEqual({ maxValue: 2, axis: 0 })
    expect(get('min_max_norm')!.getConfig()).toEqual({ minValue: 0, maxValue: 1, rate: 1, axis: 0 })
    expect(get('unit_norm')!.getConfig()).toEqual({ axis: 0 })
  })

  it('an unknown id throws, listing the known ones', () => {
    expect(() => get('max-norm')).toThrow(RangeError)
    expect(() => get('max-norm')).toThrow(
      /Could not interpret constraint identifier: "max-norm"; expected one of Constraint \(constraint, normclip>Constraint\), MaxNorm \(max_norm, maxnorm, maxNorm, normclip>MaxNorm\), MinMaxNorm \(/,
    )
    expect(() => get('Maxnorm')).toThrow(/unit_norm/)
    // Names every object has are not ids.
    expect(() => get('toString')).toThrow(/Could not interpret constraint identifier: "toString"/)
    expect(() => get({ class_name: 'constructor', config: {} })).toThrow(/Could not interpret constraint identifier: "constructor"/)
    expect(() => get({ class_name: 'L1L2', config: {} })).toThrow(/Could not interpret constraint identifier: "L1L2"/)
  })
})

describe('get / deserialize: dicts, instances, functions, null', () => {
  it('Keras 3 dicts', () => {
    const c = get({ module: 'keras.constraints', class_name: 'MaxNorm', config: { max_value: 3, axis: [0, 1, 2] }, registered_name: null })
    expect(c).toBeInstanceOf(MaxNorm)
    expect(c!.getConfig()).toEqual({ maxValue: 3, axis: [0, 1, 2] })
  })

  it('Keras 2 dicts', () => {
    const c = get({ class_name: 'MinMaxNorm', config: { min_value: 0.5, max_value: 2, rate: 0.5, axis: -1 } })
    expect(c).toBeInstanceOf(MinMaxNorm)
    expect(c!.getConfig()).toEqual({ minValue: 0.5, maxValue: 2, rate: 0.5, axis: -1 })
    expect(get({ class_name: 'UnitNorm', config: { axis: null } })!.getConfig()).toEqual({ axis: null })
    expect(get({ class_name: 'NonNeg', config: {} })).toBeInstanceOf(NonNeg)
    expect(get({ class_name: 'RadialConstraint', config: {} })).toBeInstanceOf(RadialConstraint)
  })

  it("Keras 1 dicts: MaxNorm {m}, MinMaxNorm {low, high}, with Keras 1's `name` entry", () => {
    expect(get({ class_name: 'MaxNorm', config: { name: 'MaxNorm', m: 4, axis: 1 } })!.getConfig()).toEqual({ maxValue: 4, axis: 1 })
    expect(get({ class_name: 'maxnorm', config: { m: 4 } })!.getConfig()).toEqual({ maxValue: 4, axis: 0 })
    expect(get({ class_name: 'MinMaxNorm', config: { name: 'MinMaxNorm', low: 0.1, high: 0.9, rate: 0.3, axis: 0 } })!.getConfig()).toEqual({
      minValue: 0.1,
      maxValue: 0.9,
      rate: 0.3,
      axis: 0,
    })
    expect(get({ class_name: 'NonNeg', config: { name: 'NonNeg' } })).toBeInstanceOf(NonNeg)
  })

  it("Keras 1's flat dicts, as its get_config wrote them: {name, m, axis}, {name, low, high, rate, axis}", () => {
    expect(get({ name: 'MaxNorm', m: 3, axis: 0 })!.getConfig()).toEqual({ maxValue: 3, axis: 0 })
    expect(deserialize({ name: 'MinMaxNorm', low: 0.5, high: 2, rate: 0.5, axis: [0, 1] })!.getConfig()).toEqual({
      minValue: 0.5,
      maxValue: 2,
      rate: 0.5,
      axis: [0, 1],
    })
    expect(get({ name: 'UnitNorm', axis: 1 })!.getConfig()).toEqual({ axis: 1 })
    expect(get({ name: 'NonNeg' })).toBeInstanceOf(NonNeg)
    expect(() => get({ name: 'MaxNorm', m: 3, bogus: 1 })).toThrow(/unknown option 'bogus'/)
    expect(() => get({ name: 'NoSuchConstraint', m: 3 })).toThrow(/Could not interpret constraint identifier/)
  })

  it('tfjs dicts (camelCase), also with the customObjects entry tfjs adds', () => {
    expect(get({ className: 'MaxNorm', config: { maxValue: 5, axis: 1 } })!.getConfig()).toEqual({ maxValue: 5, axis: 1 })
    expect(get({ className: 'UnitNorm', config: { axis: 1, customObjects: {} } })!.getConfig()).toEqual({ axis: 1 })
  })

  it('bad dicts throw clear errors', () => {
    expect(() => get({ config: {} } as never)).toThrow(/a dict needs 'class_name' \(Keras 2\/3\), 'className' \(tfjs\) or 'name' \(Keras 1\)/)
    expect(() => get({ class_name: 'MaxNorm', config: 3 } as never)).toThrow(/config: expected an object, got number 3/)
    expect(() => get({ class_name: 'MaxNorm', config: { max_value: -1 } })).toThrow(/MaxNorm: maxValue: expected a finite number >= 0/)
    expect(() => get({ class_name: 'MaxNorm', config: { maxvalue: 1 } })).toThrow(/unknown option 'maxvalue'/)
    expect(() => get({ class_name: 'Constraint', config: { axis: 1 } })).toThrow(/Constraint: takes no options/)
    expect(() => get(42 as never)).toThrow(/expected a string, dict, constraint or function, got number 42/)
  })

  it('instances come back as they are, ours and tfjs', () => {
    const ours = new MaxNorm({ maxValue: 3 })
    expect(get(ours)).toBe(ours)
    const theirs = tf.constraints.maxNorm({ maxValue: 3 })
    expect(get(theirs)).toBe(theirs)
  })

  it('null and undefined give null', () => {
    expect(get(null)).toBeNull()
    expect(get(undefined)).toBeNull()
    expect(deserialize(null)).toBeNull()
  })

  it('a plain function is wrapped as a constraint on tensors, which cannot be serialized', () => {
    const c = get((w: tf.Tensor) => tf.abs(w))
    expect(c).toBeInstanceOf(FunctionConstraint)
    const x = tf.tensor([-2, 3])
    const y = c!.apply(x)
    expect(Array.from(y.dataSync())).toEqual([2, 3])
    tf.dispose([x, y])
    expect(() => serialize(c!)).toThrow(/cannot be serialized/)
  })
})

describe('serialize', () => {
  const c = new MaxNorm({ maxValue: 3, axis: [0, 1, 2] })

  it('Keras 3 by default', () => {
    expect(serialize(c)).toEqual({
      module: 'keras.constraints',
      class_name: 'MaxNorm',
      config: { max_value: 3, axis: [0, 1, 2] },
      registered_name: null,
    })
    expect(serialize(new MinMaxNorm(), { format: 'keras3' })).toEqual({
      module: 'keras.constraints',
      class_name: 'MinMaxNorm',
      config: { min_value: 0, max_value: 1, rate: 1, axis: 0 },
      registered_name: null,
    })
    expect(serialize(new NonNeg())).toEqual({ module: 'keras.constraints', class_name: 'NonNeg', config: {}, registered_name: null })
  })

  it('Keras 2 and tfjs', () => {
    expect(serialize(c, { format: 'keras2' })).toEqual({ class_name: 'MaxNorm', config: { max_value: 3, axis: [0, 1, 2] } })
    expect(serialize(c, { format: 'tfjs' })).toEqual({ className: 'MaxNorm', config: { maxValue: 3, axis: [0, 1, 2] } })
    expect(serialize(new UnitNorm({ axis: null }), { format: 'keras2' })).toEqual({ class_name: 'UnitNorm', config: { axis: null } })
  })

  it("tfjs' own constraints serialize the same way", () => {
    expect(serialize(tf.constraints.maxNorm({ maxValue: 3, axis: 1 }), { format: 'keras2' })).toEqual({
      class_name: 'MaxNorm',
      config: { max_value: 3, axis: 1 },
    })
  })

  it('a non-default mode and epsilon are kept; the output is a copy', () => {
    const p = new MaxNorm({ maxValue: 1, mode: 'projection', epsilon: 1e-5 })
    const dict = serialize(p, { format: 'keras2' })
    expect(dict.config).toEqual({ max_value: 1, axis: 0, mode: 'projection', epsilon: 1e-5 })
    ;(serialize(c, { format: 'tfjs' }).config['axis'] as number[]).push(9)
    expect(c.axis).toEqual([0, 1, 2])
  })

  it('bad arguments throw', () => {
    expect(() => serialize({} as never)).toThrow(/serialize: c: expected a constraint/)
    expect(() => serialize(c, { format: 'keras4' as SerializationFormat })).toThrow(/format: expected 'keras3', 'keras2' or 'tfjs', got "keras4"/)
  })
})

describe('serialize ∘ deserialize round trips in every format', () => {
  const constraints: Constraint[] = [
    new MaxNorm(),
    new MaxNorm({ maxValue: 3.5, axis: [0, 1, 2] }),
    new MaxNorm({ maxValue: 1, axis: null, mode: 'projection' }),
    new MinMaxNorm({ minValue: 0.25, maxValue: 4, rate: 0.5, axis: -1 }),
    new UnitNorm({ axis: [], epsilon: 1e-6 }),
    new UnitNorm({ axis: 1 }),
    new NonNeg(),
    new RadialConstraint(),
    new Constraint(),
  ]
  for (const format of ['keras3', 'keras2', 'tfjs'] as const) {
    for (const c of constraints) {
      it(`${format}: ${c.kindName()} ${JSON.stringify(c.getConfig())}`, () => {
        const dict = serialize(c, { format })
        const back = deserialize(JSON.parse(JSON.stringify(dict)))!
        expect(back.constructor).toBe(c.constructor)
        expect(back.getConfig()).toEqual(c.getConfig())
        expect(serialize(back, { format })).toEqual(dict)
      })
    }
  }

  it('a Keras JSON dict comes back byte for byte', () => {
    const keras3 =
      '{"module":"keras.constraints","class_name":"MinMaxNorm","config":{"min_value":0.5,"max_value":2,"rate":0.75,"axis":[0,1]},"registered_name":null}'
    expect(JSON.stringify(serialize(deserialize(JSON.parse(keras3))!))).toBe(keras3)
    const keras2 = '{"class_name":"MaxNorm","config":{"max_value":2,"axis":0}}'
    expect(JSON.stringify(serialize(deserialize(JSON.parse(keras2))!, { format: 'keras2' }))).toBe(keras2)
  })
})

// ---------------------------------------------------------------------------------------------
// What Keras 3 and tf_keras themselves produce (scripts/keras-fixtures/generate.py).

type KerasResult = { class_name: string; config: Record<string, unknown> } | { error: string }

interface SerializationFixture {
  classes: Array<{
    class_name: string
    keras3?: Array<{ get_config: object; serialize: Keras3Dict }>
    tf_keras?: Array<{ get_config: object; serialize: Keras3Dict; serialize_legacy: object }>
  }>
  string_ids: Record<string, { keras3: KerasResult; tf_keras: KerasResult }>
  dict_ids: Array<{ identifier: object; keras3: KerasResult; tf_keras: KerasResult }>
}

const FIXTURE_PATH = resolve(__dirname, 'fixtures/keras-serialization.json')
// A missing fixture is a failure (readFileSync throws), never a silent skip.
const fixture = JSON.parse(readFileSync(FIXTURE_PATH, 'utf8')) as SerializationFixture

/** What Keras resolved an identifier to, when either Keras 3 or tf_keras accepted it. */
function kerasAnswer(results: { keras3: KerasResult; tf_keras: KerasResult }): { class_name: string; config: object } | undefined {
  for (const result of [results.keras3, results.tf_keras]) if (!('error' in result)) return result
  return undefined
}

describe('against Keras 3 and tf_keras (fixtures/keras-serialization.json)', () => {
  it("serialize gives Keras' own dicts, and reads them back", () => {
    let compared = 0
    for (const cls of fixture.classes) {
      for (const entry of [...(cls.keras3 ?? []), ...(cls.tf_keras ?? [])]) {
        const c = deserialize(entry.serialize)!
        expect(serialize(c), cls.class_name).toEqual(entry.serialize)
        expect(serialize(c, { format: 'keras2' }).config).toEqual(entry.get_config)
        if ('serialize_legacy' in entry) expect(serialize(c, { format: 'keras2' })).toEqual(entry.serialize_legacy)
        compared++
      }
    }
    expect(compared).toBeGreaterThanOrEqual(10)
  })

  it("every string id either Keras accepts gives Keras' class and config", () => {
    for (const [id, results] of Object.entries(fixture.string_ids)) {
      const expected = kerasAnswer(results)
      const c = get(id)!
      if (expected !== undefined) expect(serialize(c, { format: 'keras2' }), id).toEqual(expected)
      // The ids neither Keras knows are tfjs' camelCase ones, which tfjs accepts.
      else expect(id, id).toMatch(/^[a-z]+[A-Z]/)
    }
  })

  it("every dict either Keras accepts gives Keras' class and config; Keras 1 and tfjs spellings too", () => {
    for (const { identifier, ...results } of fixture.dict_ids) {
      const expected = kerasAnswer(results)
      const name = JSON.stringify(identifier)
      const dict = identifier as { class_name: string; config: Record<string, unknown> }
      if (expected !== undefined) {
        expect(serialize(get(dict)!, { format: 'keras2' }), name).toEqual(expected)
      } else if (dict.class_name === 'Unknown') {
        expect(() => get(dict), name).toThrow(/Could not interpret constraint identifier: "Unknown"/)
      } else {
        // Keras 1 ({m}, {low, high}) and tfjs (maxNorm, maxValue) forms: accepted here.
        expect(get(dict), name).toBeInstanceOf(Constraint)
      }
    }
  })
})
