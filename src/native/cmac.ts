// Key-safe buffers and the AES-CMAC that predicts what the kernel keeps for
// an aes-128-cmac key that is not 16 bytes long.
import * as crypto from 'node:crypto';

/**
 * A zeroed buffer for key bytes. Its memory is an ArrayBuffer of its own,
 * outside the JS heap: V8 keeps small typed arrays made by length
 * (Buffer.alloc(16), new Uint8Array(16)) inside the heap, where the garbage
 * collector copies them and leaves the old bytes behind, so zeroing the
 * array later would not remove every copy. Buffer.allocUnsafe would share
 * Node's pool with unrelated data.
 */
export function secureBytes(length: number): Buffer {
  return Buffer.from(new ArrayBuffer(length));
}

/** AES-CMAC (RFC 4493) with a 16-byte key; every intermediate block is zeroed, as the message may be a key. */
export function aesCmac(key: Uint8Array, message: Uint8Array): Buffer {
  const encrypt = (block: Uint8Array): Buffer => {
    const cipher = crypto.createCipheriv('aes-128-ecb', key, null);
    cipher.setAutoPadding(false);
    const head = cipher.update(block);
    const tail = cipher.final();
    const out = secureBytes(16);
    out.set(head);
    out.set(tail, head.length);
    head.fill(0);
    tail.fill(0);
    return out;
  };
  const double = (block: Uint8Array): Buffer => {
    const out = secureBytes(16);
    for (let i = 0; i < 16; i++) out[i] = (((block[i] ?? 0) << 1) | ((block[i + 1] ?? 0) >> 7)) & 0xff;
    if (((block[0] ?? 0) & 0x80) !== 0) out[15] = (out[15] ?? 0) ^ 0x87;
    return out;
  };
  const zeroBlock = secureBytes(16);
  const l = encrypt(zeroBlock);
  const k1 = double(l);
  const k2 = double(k1);
  l.fill(0);
  const blocks = Math.max(1, Math.ceil(message.length / 16));
  const complete = message.length > 0 && message.length % 16 === 0;
  const last = secureBytes(16);
  const lastStart = (blocks - 1) * 16;
  const lastPart = message.subarray(lastStart);
  last.set(lastPart);
  if (!complete) last[lastPart.length] = 0x80;
  const subkey = complete ? k1 : k2;
  for (let i = 0; i < 16; i++) last[i] = (last[i] ?? 0) ^ (subkey[i] ?? 0);
  let state: Buffer = secureBytes(16);
  const mixed = secureBytes(16);
  for (let b = 0; b < blocks; b++) {
    const block = b === blocks - 1 ? last : message.subarray(b * 16, b * 16 + 16);
    for (let i = 0; i < 16; i++) mixed[i] = (state[i] ?? 0) ^ (block[i] ?? 0);
    const next = encrypt(mixed);
    state.fill(0);
    state = next;
  }
  mixed.fill(0);
  k1.fill(0);
  k2.fill(0);
  last.fill(0);
  return state;
}

/**
 * The key bytes the kernel keeps for an aes-128-cmac key that is not 16 bytes
 * long: KDF_AES_128_CMAC of RFC 5926 section 3.1.1.2, AES-CMAC under an
 * all-zero key (net/ipv4/tcp_ao.c, tcp_ao_parse_crypto()).
 */
export function cmacKdfKey(key: Uint8Array): Buffer {
  return aesCmac(new Uint8Array(16), key);
}
