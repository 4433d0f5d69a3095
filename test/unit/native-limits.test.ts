// The limits are stated once per language: src/native/limits.ts for the
// config schema and the argument checks, native/tcp_ao_limits.h for the
// addon. These tests fail when the two disagree, when the addon's own checks
// drift from the figures it exports, or when the schema stops using them.
// Needs the built addon, not TCP-AO.
import t from 'tap';

import { AoKeySchema, AoPolicyFields, GlobalSchema } from '../../src/config/schema.js';
import {
  loadAddon,
  MAX_BACKLOG,
  MAX_IFINDEX,
  MAX_KEEPALIVE_PROBES,
  MAX_KEEPALIVE_SECS,
  MAX_KEY_ID,
  MAX_KEYS_PER_SOCKET,
  MAX_MACLEN,
  MIN_MACLEN,
  NATIVE_LIMITS,
  nativeLayout,
  TCP_AO_MAXKEYLEN,
} from '../../src/native/index.js';

const addon = loadAddon();

const goodKey = {
  peer: '127.0.0.1',
  prefixLength: 32,
  sendId: 1,
  recvId: 2,
  algorithm: 'hmac(sha256)',
  key: Buffer.from('limits-test-secret'),
  maclen: 0,
  ifindex: 0,
  excludeOptions: false,
  setCurrent: false,
  setRnext: false,
};

/** The argument the addon's own check refused, or undefined when the call got past the checks. */
function refusedArgument(call: () => unknown): string | undefined {
  try {
    call();
  } catch (err) {
    const e = err as { code?: unknown; argument?: unknown };
    if (e.code === 'ERR_TCPAO_INVALID_ARGUMENT') return String(e.argument);
  }
  return undefined;
}

t.test('the addon exports the same limits as src/native/limits.ts', async (t) => {
  t.same(nativeLayout().limits, NATIVE_LIMITS);
});

t.test("the addon's own checks stop at the limits it exports", async (t) => {
  const fd = addon.openSocket(4);
  t.teardown(() => addon.closeFd(fd));
  const keepalive = { idleSecs: MAX_KEEPALIVE_SECS, intervalSecs: MAX_KEEPALIVE_SECS, probes: MAX_KEEPALIVE_PROBES };
  t.equal(refusedArgument(() => addon.setKeepalive(fd, keepalive)), undefined, 'keepalive at the limits is taken');
  t.equal(refusedArgument(() => addon.setKeepalive(fd, { ...keepalive, idleSecs: MAX_KEEPALIVE_SECS + 1 })), 'keepalive.idleSecs');
  t.equal(refusedArgument(() => addon.setKeepalive(fd, { ...keepalive, intervalSecs: MAX_KEEPALIVE_SECS + 1 })), 'keepalive.intervalSecs');
  t.equal(refusedArgument(() => addon.setKeepalive(fd, { ...keepalive, probes: MAX_KEEPALIVE_PROBES + 1 })), 'keepalive.probes');

  // On a host without TCP-AO a key that passes the checks fails in the kernel (ENOPROTOOPT), not as an argument.
  const atLimits = { ...goodKey, sendId: MAX_KEY_ID, recvId: MAX_KEY_ID, maclen: MAX_MACLEN, key: Buffer.alloc(TCP_AO_MAXKEYLEN, 7) };
  t.equal(refusedArgument(() => addon.addKey(fd, atLimits)), undefined, 'a key at the limits passes the checks');
  t.equal(refusedArgument(() => addon.addKey(fd, { ...atLimits, sendId: MAX_KEY_ID + 1 })), 'key.sendId');
  t.equal(refusedArgument(() => addon.addKey(fd, { ...atLimits, recvId: MAX_KEY_ID + 1 })), 'key.recvId');
  t.equal(refusedArgument(() => addon.addKey(fd, { ...atLimits, maclen: MAX_MACLEN + 1 })), 'key.maclen');
  t.equal(refusedArgument(() => addon.addKey(fd, { ...atLimits, key: Buffer.alloc(TCP_AO_MAXKEYLEN + 1, 7) })), 'key.key');

  // The same key again and again: past the checks the kernel refuses the duplicates (or lacks TCP-AO) and no fd stays open.
  const listener = (count: number) => ({ host: '127.0.0.1', port: 0, backlog: 1, keys: new Array(count).fill(goodKey) });
  t.equal(refusedArgument(() => addon.createListener(listener(MAX_KEYS_PER_SOCKET))), undefined, `${MAX_KEYS_PER_SOCKET} keys pass the checks`);
  t.equal(refusedArgument(() => addon.createListener(listener(MAX_KEYS_PER_SOCKET + 1))), 'keys');
});

t.test('the config schema takes exactly the native limits', async (t) => {
  const cases: [string, { safeParse(value: unknown): { success: boolean } }, number, number][] = [
    ['keepalive_time_secs', GlobalSchema.shape.keepalive_time_secs, 1, MAX_KEEPALIVE_SECS],
    ['keepalive_intvl_secs', GlobalSchema.shape.keepalive_intvl_secs, 1, MAX_KEEPALIVE_SECS],
    ['keepalive_probes', GlobalSchema.shape.keepalive_probes, 1, MAX_KEEPALIVE_PROBES],
    ['listen_backlog', GlobalSchema.shape.listen_backlog, 1, MAX_BACKLOG],
    ['maclen', AoPolicyFields.shape.maclen, MIN_MACLEN, MAX_MACLEN],
    ['vrf_ifindex', AoPolicyFields.shape.vrf_ifindex, 0, MAX_IFINDEX],
    ['keyid', AoPolicyFields.shape.keyid, 0, MAX_KEY_ID],
    ['key.send_id', AoKeySchema.shape.send_id, 0, MAX_KEY_ID],
    ['key.recv_id', AoKeySchema.shape.recv_id, 0, MAX_KEY_ID],
  ];
  for (const [field, schema, lo, hi] of cases) {
    t.ok(schema.safeParse(lo).success, `${field} takes ${lo}`);
    t.ok(schema.safeParse(hi).success, `${field} takes ${hi}`);
    t.notOk(schema.safeParse(lo - 1).success, `${field} refuses ${lo - 1}`);
    t.notOk(schema.safeParse(hi + 1).success, `${field} refuses ${hi + 1}`);
  }
});
