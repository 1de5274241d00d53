/**
 * Errors about files. Every message names the file and the problem; the CLI prints it as it is
 * and exits with status 2.
 */
import type { NativeFileError } from '../binding'

/** `invalid`: the file is damaged or lies; `unsupported`; `io`: the OS refused; `request`: the request does not fit the file. */
export type FileErrorKind = 'invalid' | 'unsupported' | 'io' | 'request' | 'internal'

/** A weight file that cannot be read or written as asked. `path` is the file, `message` the problem. */
export class WeightFileError extends Error {
  override readonly name = 'WeightFileError'
  constructor(
    readonly kind: FileErrorKind,
    readonly path: string,
    readonly problem: string,
  ) {
    super(path === '' ? problem : `${path}: ${problem}`)
  }
}

export function fromNative(error: NativeFileError, fallbackPath = ''): WeightFileError {
  return new WeightFileError(error.kind as FileErrorKind, error.path || fallbackPath, error.message)
}

/** Node's fs errors as WeightFileErrors naming the file. */
export function fromFs(error: unknown, path: string, what: string): WeightFileError {
  if (error instanceof WeightFileError) return error
  const e = error as NodeJS.ErrnoException
  const reason =
    e?.code === 'ENOENT'
      ? 'no such file or directory'
      : e?.code === 'EACCES' || e?.code === 'EPERM'
        ? 'permission denied'
        : e?.code === 'ENOSPC'
          ? 'no space left on device'
          : e?.code === 'EROFS'
            ? 'read-only file system'
            : e?.code === 'EFBIG'
              ? 'file too large (the file system or the file-size limit, ulimit -f)'
              : (e?.message ?? String(error))
  return new WeightFileError('io', path, `${what}: ${reason}`)
}
