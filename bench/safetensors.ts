// Shared by the files benchmark and the big-file and kill tests, which write safetensors files
// too large to build in memory: the header goes out first, the tensor bytes after it in blocks.
import { openSync, writeSync } from 'node:fs'

/**
 * Creates `path` holding the 8-byte length and the JSON header of `tensors`, padded with spaces
 * to a multiple of 8 so the data that follows is aligned; returns the open descriptor, positioned
 * at the first data byte, for the caller to write the data and close, and that byte's offset.
 */
export function openSafetensors(path: string, tensors: Record<string, unknown>): { fd: number; dataStart: number } {
  let json = JSON.stringify(tensors)
  json += ' '.repeat((8 - (json.length % 8)) % 8)
  const head = Buffer.alloc(8)
  head.writeBigUInt64LE(BigInt(json.length))
  const fd = openSync(path, 'w')
  writeSync(fd, head)
  writeSync(fd, json)
  return { fd, dataStart: 8 + json.length }
}
