/**
 * The one reader for config files and key files (check-config, doctor, start
 * and reload all come through here). It never blocks on what is not a file:
 *
 * - open with O_NONBLOCK, so a FIFO with no writer opens at once instead of
 *   waiting for one (fifo(7));
 * - fstat the open fd, never the path, and refuse anything but a regular file:
 *   a FIFO, socket or device (a character device such as /dev/zero reports
 *   size 0, so a size check on the path alone would let it stream forever);
 * - read at most `maxBytes + 1` bytes, whatever the size said, so a file that
 *   grows after fstat is still caught.
 *
 * The scratch buffer is zeroed before it is dropped: key files come through here.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { errorCodeOf } from '../errors.js';

// libuv adds O_CLOEXEC to every open on Linux (uv__fs_open), so it is not spelt out here.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

export type FileKind = 'directory' | 'FIFO' | 'socket' | 'character device' | 'block device' | 'special file';

export type FileReadFailure =
  | { readonly reason: 'open'; readonly code: string | undefined }
  | { readonly reason: 'not-regular'; readonly kind: FileKind }
  | { readonly reason: 'too-large'; readonly size: number | undefined }
  | { readonly reason: 'read'; readonly code: string | undefined };

/** Why a file was not read; the caller words the message for its own kind of file. */
export class FileReadError extends Error {
  readonly failure: FileReadFailure;

  constructor(failure: FileReadFailure) {
    super(`file not read: ${failure.reason}`);
    this.name = 'FileReadError';
    this.failure = failure;
  }
}

function kindOf(stat: Stats): FileKind {
  if (stat.isDirectory()) return 'directory';
  if (stat.isFIFO()) return 'FIFO';
  if (stat.isSocket()) return 'socket';
  if (stat.isCharacterDevice()) return 'character device';
  if (stat.isBlockDevice()) return 'block device';
  return 'special file';
}

function checkOpened(stat: Stats, maxBytes: number): void {
  if (!stat.isFile()) throw new FileReadError({ reason: 'not-regular', kind: kindOf(stat) });
  if (stat.size > maxBytes) throw new FileReadError({ reason: 'too-large', size: stat.size });
}

/**
 * Allocates the buffers a read fills. Key files pass secureBytes, so that no
 * copy of a key stays on the JS heap once zeroed.
 */
export type Allocate = (size: number) => Buffer;

/** Copies the first `length` bytes out of the scratch buffer, then zeroes it. */
function takeContent(scratch: Buffer, length: number, allocate: Allocate): Buffer {
  const content = allocate(length);
  scratch.copy(content, 0, 0, length);
  scratch.fill(0);
  return content;
}

/** Reads a regular file of at most `maxBytes` bytes. Throws FileReadError. */
export function readRegularFileSync(path: string, maxBytes: number, allocate: Allocate = Buffer.alloc): Buffer {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (err) {
    throw new FileReadError({ reason: 'open', code: errorCodeOf(err) });
  }
  try {
    checkOpened(fstatSync(fd), maxBytes);
    // One byte more than the limit reveals a file that grew after fstat.
    const scratch = allocate(maxBytes + 1);
    let length = 0;
    try {
      for (;;) {
        const n = readSync(fd, scratch, length, scratch.length - length, null);
        if (n === 0) break;
        length += n;
        if (length === scratch.length) throw new FileReadError({ reason: 'too-large', size: undefined });
      }
    } catch (err) {
      scratch.fill(0);
      if (err instanceof FileReadError) throw err;
      throw new FileReadError({ reason: 'read', code: errorCodeOf(err) });
    }
    return takeContent(scratch, length, allocate);
  } finally {
    closeSync(fd);
  }
}

/** The same rules as readRegularFileSync, without blocking the event loop (for reloads). */
export async function readRegularFile(path: string, maxBytes: number, allocate: Allocate = Buffer.alloc): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, OPEN_FLAGS);
  } catch (err) {
    throw new FileReadError({ reason: 'open', code: errorCodeOf(err) });
  }
  try {
    checkOpened(await handle.stat(), maxBytes);
    const scratch = allocate(maxBytes + 1);
    let length = 0;
    try {
      for (;;) {
        const { bytesRead } = await handle.read(scratch, length, scratch.length - length, null);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length === scratch.length) throw new FileReadError({ reason: 'too-large', size: undefined });
      }
    } catch (err) {
      scratch.fill(0);
      if (err instanceof FileReadError) throw err;
      throw new FileReadError({ reason: 'read', code: errorCodeOf(err) });
    }
    return takeContent(scratch, length, allocate);
  } finally {
    await handle.close();
  }
}

/** A short, printable reason for an open or read errno. */
export function describeErrno(code: string | undefined): string {
  switch (code) {
    case 'ENOENT':
      return 'no such file (ENOENT)';
    case 'EACCES':
      return 'permission denied (EACCES)';
    case 'EISDIR':
      return 'it is a directory (EISDIR)';
    case 'ENOTDIR':
      return 'a component of the path is not a directory (ENOTDIR)';
    case 'ELOOP':
      return 'too many symbolic links (ELOOP)';
    case 'ENXIO':
      return 'no such device (ENXIO)';
    default:
      return code ?? 'unknown error';
  }
}
