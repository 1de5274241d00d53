/**
 * Deflated `.npz` entries (np.savez_compressed: zip method 8). The native core works on byte
 * ranges of files, and a deflated entry is no byte range of the .npy it holds: each one is inflated
 * (streamed through Node's zlib, checked against the CRC-32 and sizes of the zip directory) into
 * a scratch file that the core then reads like a .npy file. `apply` builds a new archive with
 * {@link ZipWriter}: untouched entries keep their compressed bytes as they are (copied, never
 * re-compressed), constrained ones are deflated again from the core's output where it differs
 * from the entry (an entry its constraints left as it was is copied too).
 */
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as zlib from 'node:zlib'
import type { NativeZipEntry } from '../binding'
import { WeightFileError, fromFs } from './errors'

export const STORED = 0
export const DEFLATED = 8

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`

/** The entry's (compressed) bytes as a stream; createReadStream cannot express an empty range. */
function rawStream(path: string, entry: NativeZipEntry): Readable {
  if (entry.compressedSize === 0) return Readable.from([])
  return createReadStream(path, { start: entry.dataOffset, end: entry.dataOffset + entry.compressedSize - 1 })
}

/** Whether the file at `path` holds exactly the `length` bytes of `other` from `start`. */
export function sameBytes(path: string, other: string, start: number, length: number): boolean {
  if (statSync(path).size !== length) return false
  const [a, b] = [openSync(path, 'r'), openSync(other, 'r')]
  try {
    const [bufA, bufB] = [Buffer.alloc(1 << 20), Buffer.alloc(1 << 20)]
    for (let done = 0; done < length; ) {
      const n = Math.min(bufA.length, length - done)
      if (readSync(a, bufA, 0, n, done) !== n || readSync(b, bufB, 0, n, start + done) !== n) return false
      if (!bufA.subarray(0, n).equals(bufB.subarray(0, n))) return false
      done += n
    }
    return true
  } finally {
    closeSync(a)
    closeSync(b)
  }
}

async function writeAll(file: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let done = 0
  while (done < chunk.length) {
    const { bytesWritten } = await file.write(chunk, done, chunk.length - done, position + done)
    done += bytesWritten
  }
}

/**
 * Inflates deflated entry `entry` of the zip at `path` into a new file `dest`. The directory's
 * uncompressed size bounds what is written (a size that lies cannot fill the disk), and the
 * inflated bytes must match its size and CRC-32, with the deflate stream ending exactly at the
 * entry's end.
 */
export async function inflateEntry(path: string, entry: NativeZipEntry, dest: string): Promise<void> {
  const where = `entry ${JSON.stringify(entry.name)}`
  const invalid = (problem: string): WeightFileError => new WeightFileError('invalid', path, `${where}: ${problem}`)
  let out: FileHandle
  try {
    out = await open(dest, 'wx')
  } catch (error) {
    throw fromFs(error, path, `${where}: cannot unpack it into ${dest}`)
  }
  const inflate = zlib.createInflateRaw()
  let crc = 0
  let bytes = 0
  try {
    await pipeline(rawStream(path, entry), inflate, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) {
        if (bytes + chunk.length > entry.size) throw invalid(`inflates to more than the ${entry.size} bytes the zip directory states`)
        crc = zlib.crc32(chunk, crc)
        await writeAll(out, chunk, bytes)
        bytes += chunk.length
      }
    })
  } catch (error) {
    if (error instanceof WeightFileError) throw error
    // zlib's errors carry Z_* codes; anything else is the file system's.
    if ((error as NodeJS.ErrnoException).code?.startsWith('Z_')) throw invalid(`corrupt deflate data (${(error as Error).message})`)
    throw fromFs(error, path, `${where}: cannot unpack it into ${dest}`)
  } finally {
    await out.close()
  }
  if (inflate.bytesWritten !== entry.compressedSize) {
    throw invalid(`the deflate stream ends after ${inflate.bytesWritten} of the entry's ${entry.compressedSize} compressed bytes`)
  }
  if (bytes !== entry.size) throw invalid(`inflates to ${bytes} bytes, the zip directory states ${entry.size}`)
  if (crc >>> 0 !== entry.crc32 >>> 0) throw invalid(`CRC-32 mismatch: the zip directory states ${hex(entry.crc32)}, the inflated bytes have ${hex(crc)}`)
}

const U32_MAX = 0xffff_ffff
const U16_MAX = 0xffff
/**
 * A deflated entry's compressed size is known only after it is written; above this many input
 * bytes its local header gets a zip64 field up front, in case deflate's worst-case growth (a few
 * bytes per 16 KiB block) takes it past 4 GiB.
 */
const ZIP64_STREAMED = 0xf000_0000
// 1980-01-01 00:00, the DOS epoch: what np.savez writes too, so rewritten entries date alike.
const DOS_TIME = 0
const DOS_DATE = 0x21

interface CentralRecord {
  name: Buffer
  flags: number
  method: number
  crc32: number
  compressedSize: number
  size: number
  offset: number
}

/** A zip archive written entry by entry to a new file, streaming, zip64 where sizes or offsets need it. */
export class ZipWriter {
  private position = 0
  private readonly records: CentralRecord[] = []

  private constructor(private readonly file: FileHandle) {}

  static async create(path: string): Promise<ZipWriter> {
    return new ZipWriter(await open(path, 'wx'))
  }

  private async append(chunk: Buffer): Promise<void> {
    await writeAll(this.file, chunk, this.position)
    this.position += chunk.length
  }

  /** Writes a local header; returns where its CRC-32 and compressed size go once they are known. */
  private async localHeader(record: CentralRecord, zip64: boolean): Promise<{ crcAt: number; sizeAt: number; sizeBytes: 4 | 8 }> {
    const header = Buffer.alloc(30 + record.name.length + (zip64 ? 20 : 0))
    header.writeUInt32LE(0x04034b50, 0)
    header.writeUInt16LE(zip64 ? 45 : 20, 4)
    header.writeUInt16LE(record.flags, 6)
    header.writeUInt16LE(record.method, 8)
    header.writeUInt16LE(DOS_TIME, 10)
    header.writeUInt16LE(DOS_DATE, 12)
    header.writeUInt32LE(record.crc32 >>> 0, 14)
    header.writeUInt32LE(zip64 ? U32_MAX : record.compressedSize, 18)
    header.writeUInt32LE(zip64 ? U32_MAX : record.size, 22)
    header.writeUInt16LE(record.name.length, 26)
    header.writeUInt16LE(zip64 ? 20 : 0, 28)
    record.name.copy(header, 30)
    if (zip64) {
      // In a local header the zip64 field holds both sizes, uncompressed first.
      const at = 30 + record.name.length
      header.writeUInt16LE(1, at)
      header.writeUInt16LE(16, at + 2)
      header.writeBigUInt64LE(BigInt(record.size), at + 4)
      header.writeBigUInt64LE(BigInt(record.compressedSize), at + 12)
    }
    const start = this.position
    await this.append(header)
    return zip64 ? { crcAt: start + 14, sizeAt: start + 30 + record.name.length + 12, sizeBytes: 8 } : { crcAt: start + 14, sizeAt: start + 18, sizeBytes: 4 }
  }

  private record(name: string, method: number, size: number): CentralRecord {
    const bytes = Buffer.from(name, 'utf8')
    // Bit 11: the name is UTF-8 (set only when it is not plain ASCII, as Python's zipfile does).
    const flags = bytes.length === name.length ? 0 : 0x0800
    return { name: bytes, flags, method, crc32: 0, compressedSize: 0, size, offset: this.position }
  }

  /** An entry copied as it is: its compressed bytes and the directory's CRC-32 and sizes. */
  async addRaw(entry: NativeZipEntry, source: Readable): Promise<void> {
    const record = { ...this.record(entry.name, entry.method, entry.size), crc32: entry.crc32, compressedSize: entry.compressedSize }
    await this.localHeader(record, record.size >= U32_MAX || record.compressedSize >= U32_MAX)
    for await (const chunk of source) await this.append(chunk as Buffer)
    this.records.push(record)
  }

  /** An entry of `size` bytes read from `source`, stored or deflated, its CRC-32 computed on the way. */
  async addStreamed(name: string, method: typeof STORED | typeof DEFLATED, size: number, source: Readable): Promise<void> {
    const record = this.record(name, method, size)
    const zip64 = method === STORED ? size >= U32_MAX : size >= ZIP64_STREAMED
    const at = await this.localHeader(record, zip64)
    const start = this.position
    let crc = 0
    let bytes = 0
    const counted = async function* (input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
      for await (const chunk of input) {
        crc = zlib.crc32(chunk, crc)
        bytes += chunk.length
        yield chunk
      }
    }
    const sink = async (input: AsyncIterable<Buffer>): Promise<void> => {
      for await (const chunk of input) await this.append(chunk)
    }
    if (method === DEFLATED) await pipeline(source, counted, zlib.createDeflateRaw(), sink)
    else await pipeline(source, counted, sink)
    if (bytes !== size) throw new Error(`${name}: ${bytes} bytes came, ${size} were announced`)
    record.crc32 = crc >>> 0
    record.compressedSize = this.position - start
    if (!zip64 && record.compressedSize >= U32_MAX) throw new Error(`${name}: deflated to more than 4 GiB without a zip64 header`)
    const crcBytes = Buffer.alloc(4)
    crcBytes.writeUInt32LE(record.crc32)
    await writeAll(this.file, crcBytes, at.crcAt)
    const sizeBytes = Buffer.alloc(at.sizeBytes)
    if (at.sizeBytes === 8) sizeBytes.writeBigUInt64LE(BigInt(record.compressedSize))
    else sizeBytes.writeUInt32LE(record.compressedSize)
    await writeAll(this.file, sizeBytes, at.sizeAt)
    this.records.push(record)
  }

  /** The central directory and end records; then the file is synced and closed. */
  async finish(): Promise<void> {
    const cdStart = this.position
    for (const r of this.records) {
      // A central zip64 field holds only the values too big for their 4-byte fields, in this order.
      const wide = [r.size, r.compressedSize, r.offset].filter((v) => v >= U32_MAX)
      const extra = wide.length === 0 ? 0 : 4 + 8 * wide.length
      const header = Buffer.alloc(46 + r.name.length + extra)
      header.writeUInt32LE(0x02014b50, 0)
      header.writeUInt16LE((3 << 8) | 45, 4) // made by: Unix, zip 4.5
      header.writeUInt16LE(wide.length > 0 ? 45 : 20, 6)
      header.writeUInt16LE(r.flags, 8)
      header.writeUInt16LE(r.method, 10)
      header.writeUInt16LE(DOS_TIME, 12)
      header.writeUInt16LE(DOS_DATE, 14)
      header.writeUInt32LE(r.crc32 >>> 0, 16)
      header.writeUInt32LE(Math.min(r.compressedSize, U32_MAX), 20)
      header.writeUInt32LE(Math.min(r.size, U32_MAX), 24)
      header.writeUInt16LE(r.name.length, 28)
      header.writeUInt16LE(extra, 30)
      header.writeUInt32LE((0o100644 << 16) >>> 0, 38) // a regular file, rw-r--r--
      header.writeUInt32LE(Math.min(r.offset, U32_MAX), 42)
      r.name.copy(header, 46)
      if (extra > 0) {
        const at = 46 + r.name.length
        header.writeUInt16LE(1, at)
        header.writeUInt16LE(extra - 4, at + 2)
        wide.forEach((v, i) => header.writeBigUInt64LE(BigInt(v), at + 4 + 8 * i))
      }
      await this.append(header)
    }
    const cdSize = this.position - cdStart
    const count = this.records.length
    if (count >= U16_MAX || cdStart >= U32_MAX || cdSize >= U32_MAX) {
      const record = Buffer.alloc(56 + 20)
      record.writeUInt32LE(0x06064b50, 0)
      record.writeBigUInt64LE(44n, 4) // the size of the rest of the record
      record.writeUInt16LE((3 << 8) | 45, 12)
      record.writeUInt16LE(45, 14)
      record.writeBigUInt64LE(BigInt(count), 24)
      record.writeBigUInt64LE(BigInt(count), 32)
      record.writeBigUInt64LE(BigInt(cdSize), 40)
      record.writeBigUInt64LE(BigInt(cdStart), 48)
      record.writeUInt32LE(0x07064b50, 56) // the locator
      record.writeBigUInt64LE(BigInt(this.position), 64)
      record.writeUInt32LE(1, 72)
      await this.append(record)
    }
    const end = Buffer.alloc(22)
    end.writeUInt32LE(0x06054b50, 0)
    end.writeUInt16LE(Math.min(count, U16_MAX), 8)
    end.writeUInt16LE(Math.min(count, U16_MAX), 10)
    end.writeUInt32LE(Math.min(cdSize, U32_MAX), 12)
    end.writeUInt32LE(Math.min(cdStart, U32_MAX), 16)
    await this.append(end)
    await this.file.sync()
    await this.file.close()
  }

  /** Closes the file after a failure (the caller removes it). */
  async abandon(): Promise<void> {
    await this.file.close().catch(() => undefined)
  }

  /** Copies entry `entry` of the archive at `path` as it is. */
  static raw(path: string, entry: NativeZipEntry): Readable {
    return rawStream(path, entry)
  }
}
