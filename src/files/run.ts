/** Running a native file job with progress, and turning its result into outcomes or an error. */
import { NativeFileJob, type NativeFilePlan, type NativeOutcome } from '../binding'
import { fromNative } from './errors'

/** Called now and then while a job runs, with bytes done and bytes in all. */
export type ProgressCallback = (done: number, total: number) => void

export async function runJob(
  plan: NativeFilePlan,
  write: boolean,
  total: number,
  onProgress: ProgressCallback | undefined,
  path: string,
): Promise<NativeOutcome[]> {
  const job = new NativeFileJob(plan, write)
  const timer = onProgress === undefined ? undefined : setInterval(() => onProgress(job.progress(), total), 100)
  try {
    const result = await job.run()
    if (result.error) throw fromNative(result.error, path)
    onProgress?.(total, total)
    return result.outcomes
  } finally {
    if (timer !== undefined) clearInterval(timer)
  }
}
