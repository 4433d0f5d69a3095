/** The bytes of an AoKeySpec key, whether a Uint8Array or key material (a SecretKey), as a copy. */
import type { AoKeySpec } from '../../src/native/index.js';

export function keyBytes(key: AoKeySpec['key']): Buffer {
  return Buffer.from(key instanceof Uint8Array ? key : key.reveal());
}
