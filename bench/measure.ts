// Timing for `npm run bench`: every method of a case is sampled in turn (rounds, each in a new
// shuffled order, with a garbage collection between rounds), so that the noise of a shared machine
// (other builds, frequency changes) and the cache and heap state one method leaves behind fall on
// all of them alike; each method's figure is the median of its samples.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** One way of doing a case's work, timed as a whole. */
export interface Method {
  key: string
  /** Untimed, before each sample (e.g. refill the buffer, switch the tfjs backend). */
  prepare?: () => void | Promise<void>
  /** The timed work: one call (or one call per weight of the case). */
  run: () => void | Promise<void>
  /**
   * True when `run` may be repeated without `prepare` in between (the work stays the same),
   * so that a sample of a fast method can time many calls and divide.
   */
  repeatable?: boolean
}

export interface Sampled {
  /** Median milliseconds per call. */
  median: number
  /** First and third quartiles of the samples (their difference is the interquartile range). */
  q1: number
  q3: number
  samples: number
  /** Calls timed together in each sample. */
  repeat: number
}

export interface MeasureOptions {
  /** Time each method may take in all, roughly (its samples are capped by it). */
  budgetMs: number
  /** A sample of a repeatable method lasts at least this long. */
  minSampleMs: number
  maxSamples: number
}

const now = () => performance.now()

/**
 * V8's collector, so that garbage left by one method (tfjs allocates a lot) is collected between
 * rounds, untimed, rather than inside the next method's sample.
 */
const collectGarbage: () => void = (() => {
  try {
    setFlagsFromString('--expose-gc')
    return runInNewContext('gc') as () => void
  } catch {
    return () => {}
  }
})()

/** A fixed-seed shuffle: each round visits the methods in a new order, so no method always follows the same one. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items]
  let state = seed >>> 0 || 1
  for (let i = out.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    const j = state % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

async function timeOnce(method: Method, repeat: number): Promise<number> {
  if (method.prepare) await method.prepare()
  const start = now()
  for (let i = 0; i < repeat; i++) {
    const result = method.run()
    if (result) await result
  }
  return (now() - start) / repeat
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5)
}

/** The `p` quantile, interpolating between the two nearest samples (NaN for no samples). */
export function quantile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const at = p * (sorted.length - 1)
  const low = Math.floor(at)
  const high = Math.min(low + 1, sorted.length - 1)
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (at - low)
}

/** Median and quartiles of `values`. */
export function summarize(values: readonly number[]): { median: number; q1: number; q3: number } {
  return { median: quantile(values, 0.5), q1: quantile(values, 0.25), q3: quantile(values, 0.75) }
}

/**
 * Warms every method up, then samples them in rounds (one sample of each method per round)
 * until each has its number of samples: as many as its budget allows, between 3 and
 * `maxSamples` (a slow peer gets 3, after one warm-up call).
 */
export async function measureInterleaved(methods: readonly Method[], options: MeasureOptions): Promise<Map<string, Sampled>> {
  const plans = new Map<string, { method: Method; repeat: number; target: number; times: number[] }>()
  for (const method of methods) {
    let estimate = await timeOnce(method, 1)
    if (estimate < 200) estimate = Math.min(estimate, await timeOnce(method, 1))
    if (estimate < 50) estimate = Math.min(estimate, await timeOnce(method, 1))
    const repeat = method.repeatable ? Math.max(1, Math.min(10_000, Math.ceil(options.minSampleMs / Math.max(estimate, 1e-4)))) : 1
    const perSample = estimate * repeat
    const target = Math.max(3, Math.min(options.maxSamples, Math.floor(options.budgetMs / Math.max(perSample, 1e-3))))
    plans.set(method.key, { method, repeat, target, times: [] })
  }
  for (let round = 1; ; round++) {
    let pending = false
    collectGarbage()
    for (const plan of shuffled([...plans.values()], round)) {
      if (plan.times.length >= plan.target) continue
      pending = true
      plan.times.push(await timeOnce(plan.method, plan.repeat))
    }
    if (!pending) break
  }
  const results = new Map<string, Sampled>()
  for (const [key, plan] of plans) results.set(key, { ...summarize(plan.times), samples: plan.times.length, repeat: plan.repeat })
  return results
}
