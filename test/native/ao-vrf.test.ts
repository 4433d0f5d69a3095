// Keys scoped to a VRF (an L3 master device) through `ifindex`, on a real
// TCP-AO kernel: set, read back with the flag, refused for a device that is no
// VRF, and deleted by the same ifindex. Needs root for the VRF device.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { defaultBinding } from '../../src/native/index.js';
import { skipUnlessAo, testKey } from '../helpers/ao.js';

const binding = defaultBinding();

const TCP_AO_KEYF_IFINDEX = 1;
const peer = '192.0.2.10';

function ip(args: readonly string[]): void {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${result.stderr}`);
}

function ifindexOf(device: string): number {
  return Number(readFileSync(`/sys/class/net/${device}/ifindex`, 'utf8').trim());
}

/** A VRF device for this test only, removed at teardown. */
function makeVrf(t: Test): number {
  const name = `aovrf${process.pid % 10_000}`;
  ip(['link', 'add', name, 'type', 'vrf', 'table', String(4000 + (process.pid % 1000))]);
  t.teardown(() => {
    spawnSync('ip', ['link', 'del', name]);
  });
  ip(['link', 'set', name, 'up']);
  return ifindexOf(name);
}

function scratchSocket(t: Test): number {
  const fd = binding.openScratchSocket(4);
  t.teardown(() => binding.closeFd(fd));
  return fd;
}

/** Send ids of the keys on fd; a socket without TCP-AO state (ENOENT) has none. */
function installedKeyIds(fd: number): number[] {
  try {
    return binding.getKeys(fd).map((key) => key.sendId);
  } catch (error) {
    if ((error as { sysCode?: string }).sysCode === 'ENOENT') return [];
    throw error;
  }
}

if (skipUnlessAo(t)) {
  t.test('a key scoped to a VRF reads back with its ifindex and the IFINDEX flag', async (t) => {
    const vrfIndex = makeVrf(t);
    const fd = scratchSocket(t);
    binding.addKey(fd, testKey({ peer, sendId: 9, recvId: 9, ifindex: vrfIndex }));
    binding.addKey(fd, testKey({ peer, sendId: 10, recvId: 10 }));
    const keys = binding.getKeys(fd);
    const scoped = keys.find((key) => key.sendId === 9);
    const unscoped = keys.find((key) => key.sendId === 10);
    t.equal(scoped?.ifindex, vrfIndex, 'the kernel keeps the VRF ifindex');
    t.equal((scoped?.keyflags ?? 0) & TCP_AO_KEYF_IFINDEX, TCP_AO_KEYF_IFINDEX, 'with TCP_AO_KEYF_IFINDEX set');
    t.equal(unscoped?.ifindex, 0, 'a key without ifindex stays in the default VRF');
    t.equal((unscoped?.keyflags ?? 0) & TCP_AO_KEYF_IFINDEX, 0, 'and carries no IFINDEX flag');
  });

  t.test('a device that is no VRF is refused by the kernel', async (t) => {
    const fd = scratchSocket(t);
    t.throws(
      () => binding.addKey(fd, testKey({ peer, sendId: 9, recvId: 9, ifindex: ifindexOf('lo') })),
      {
        code: 'ERR_TCPAO_SYSCALL',
        sysCode: 'EINVAL',
        syscall: 'setsockopt(TCP_AO_ADD_KEY)',
        message: /names ifindex \d+, which is not a VRF .*set vrf_ifindex to the ifindex of a VRF/,
      },
      'lo is not an L3 master, and the error says what to change',
    );
    t.same(installedKeyIds(fd), [], 'and nothing was installed');
  });

  t.test('deleteKey finds a VRF key by the same ifindex', async (t) => {
    const vrfIndex = makeVrf(t);
    const fd = scratchSocket(t);
    binding.addKey(fd, testKey({ peer, sendId: 9, recvId: 9, ifindex: vrfIndex }));
    binding.addKey(fd, testKey({ peer, sendId: 11, recvId: 11 }));
    binding.deleteKey(fd, { peer, sendId: 9, recvId: 9, ifindex: vrfIndex });
    t.same(installedKeyIds(fd), [11], 'only the default-VRF key is left');
  });
}
