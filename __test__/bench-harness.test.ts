/**
 * The benchmark harness (bench/harness.ts, bench/measure.ts): argument parsing, CPU kinds, the
 * spread printed beside every median, and where results go — a plain run never touches the tree.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { benchArgs, committedDir, cpuKindOf, fmtSample, machine, spread, writeResult } from '../bench/harness'
import { quantile, summarize } from '../bench/measure'

describe('bench harness', () => {
  it('parses its switches and rejects anything else', () => {
    expect(benchArgs([])).toMatchObject({ update: false, quick: false, only: undefined, suite: undefined })
    const parsed = benchArgs(['--update', '--quick', '--only=^\\[16', '--suite=clipping'])
    expect(parsed).toMatchObject({ update: true, quick: true, suite: 'clipping' })
    expect(parsed.only!.test('[16], 0')).toBe(true)
    expect(() => benchArgs(['--updat'])).toThrow(/unknown argument "--updat"/)
    expect(() => benchArgs(['update'])).toThrow(/unknown argument/)
  })

  it('names CPU kinds from lscpu’s vendor, family and model', () => {
    expect(cpuKindOf('AuthenticAMD', 26, 2, 'AMD EPYC')[0]).toBe('amd-zen5')
    expect(cpuKindOf('AuthenticAMD', 25, 0x11, 'AMD EPYC')[0]).toBe('amd-zen4') // Genoa
    expect(cpuKindOf('AuthenticAMD', 25, 0x01, 'AMD EPYC')[0]).toBe('amd-zen3') // Milan
    expect(cpuKindOf('GenuineIntel', 6, 143, 'Intel(R) Xeon(R) Platinum')).toEqual(['intel-xeon', 'Intel Xeon'])
    expect(cpuKindOf('GenuineIntel', 6, 167, 'Intel(R) Xeon(R) Processor')[0]).toBe('intel-xeon') // KVM's model number
    expect(cpuKindOf('GenuineIntel', 6, 183, 'Intel(R) Core(TM) i9-13900K')[0]).toBe('intel-f6m183')
    expect(cpuKindOf('', NaN, NaN, 'Apple M2')[0]).toBe('apple-m2')
  })

  it('summarizes samples with interpolated quartiles and prints half the IQR', () => {
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5)
    expect(summarize([1, 2, 3, 4, 5])).toEqual({ median: 3, q1: 2, q3: 4 })
    expect(quantile([], 0.5)).toBeNaN()
    const s = { median: 2, q1: 1.9, q3: 2.1, samples: 5, repeat: 1 }
    expect(spread(s)).toBe('±5.0%')
    expect(fmtSample(s)).toBe('2.00 ±5.0%')
    expect(fmtSample(undefined)).toBe('n/a')
  })

  it('writes into the run directory only, unless --update', () => {
    const dir = mkdtempSync(join(tmpdir(), 'normclip-bench-'))
    process.env.BENCH_RUN_DIR = dir
    const paths = writeResult(benchArgs([]), 'probe-test.md', 'hello\n')
    expect(paths).toEqual([join(dir, 'probe-test.md')])
    expect(readFileSync(paths[0]!, 'utf8')).toBe('hello\n')
    expect(existsSync(join(committedDir, machine().kind, 'probe-test.md'))).toBe(false)
  })
})
