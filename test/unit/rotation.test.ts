/**
 * Key rotation logic on the host: the per-socket plans, their execution
 * against a fake binding that keeps the kernel's rules, and the reload
 * controller (validate first, apply the difference, remove keys once the
 * peer has moved off them, refuse connections made with a retired key).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import pino from 'pino';
import t from 'tap';

import { ConfigError, loadConfigFile, loadConfigText, type SidecarConfig } from '../../src/config/load.js';
import { ConnectionRefused } from '../../src/proxy/server.js';
import { changedIdentities, generationFromConfig, keysForPeer } from '../../src/policy/keyset.js';
import type { WireSocket } from '../../src/proxy/live-handler.js';
import { applySocketPlan } from '../../src/rotation/apply-keys.js';
import { RotationController } from '../../src/rotation/controller.js';
import { planSocket } from '../../src/rotation/reconcile.js';
import { policyToml, terminatorSection } from '../helpers/configs.js';
import { FakeKernelBinding, type FakeSocket } from '../helpers/fake-bindings.js';

const ENV = { KEY_ONE: 'first-rotation-key-aaaa', KEY_TWO: 'second-rotation-key-bbbb', KEY_TWO_CHANGED: 'second-rotation-key-CHANGED' };

type Role = 'preferred' | 'accept' | 'deprecated';

function terminatorToml(keys: [number, Role, string][], listen = '10.0.0.2:1790'): string {
  return [
    terminatorSection(listen, '127.0.0.1:11019'),
    policyToml({ name: 'wire', peer: '10.0.0.1', keys: keys.map(([id, role, env]) => ({ sendId: id, recvId: id, role, source: `env:${env}` })) }),
  ].join('\n');
}

function load(text: string, env: NodeJS.ProcessEnv = ENV): SidecarConfig {
  return loadConfigText(text, { source: '/etc/tcpao/terminator.toml', baseDir: '/etc/tcpao', env }).config;
}

function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

t.test('config: the single-key form and [[ao_policy.key]] tables give the same shape', async (t) => {
  const single = load(
    ['[terminator]', 'listen_ao = "10.0.0.2:1790"', 'forward_plain = "127.0.0.1:1"', '[[ao_policy]]', 'name = "w"', 'peer_ip = "10.0.0.1"', 'keyid = 4', 'mac_alg = "hmac-sha1"', 'key_source = "env:KEY_ONE"'].join('\n'),
  );
  const policy = single.ao_policy[0];
  t.same(policy?.keys.map((key) => [key.send_id, key.recv_id, key.role, key.mac_alg]), [[4, 4, 'preferred', 'hmac-sha1']]);
  t.equal(policy?.key, policy?.keys[0]?.secret, 'the policy key is the preferred key');
  const multi = load(terminatorToml([[1, 'accept', 'KEY_ONE'], [2, 'preferred', 'KEY_TWO']]));
  const second = multi.ao_policy[0];
  t.same(second?.keys.map((key) => [key.send_id, key.role]), [[1, 'accept'], [2, 'preferred']]);
  t.equal(second?.send_id, 2, 'policy-level ids describe the preferred key');
  t.equal(second?.key.byteLength, ENV.KEY_TWO.length);
});

t.test('config: key tables are checked', async (t) => {
  const problems = (text: string): string[] => {
    try {
      load(text);
      return [];
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.problems.map((problem) => `${problem.code} ${problem.path}`);
    }
  };
  t.same(problems(terminatorToml([[1, 'accept', 'KEY_ONE'], [2, 'accept', 'KEY_TWO']])), ['ERR_TCPAO_CONFIG_INVALID ao_policy[0].key'], 'no preferred key');
  t.same(problems(terminatorToml([[1, 'preferred', 'KEY_ONE'], [2, 'preferred', 'KEY_TWO']])), ['ERR_TCPAO_CONFIG_INVALID ao_policy[0].key'], 'two preferred keys');
  t.same(
    problems(terminatorToml([[1, 'preferred', 'KEY_ONE'], [1, 'accept', 'KEY_TWO']])).sort(),
    ['ERR_TCPAO_CONFIG_INVALID ao_policy[0].key[1].recv_id', 'ERR_TCPAO_CONFIG_INVALID ao_policy[0].key[1].send_id'],
    'ids reused within a policy',
  );
  t.same(problems(terminatorToml([[1, 'preferred', 'KEY_ONE'], [2, 'accept', 'KEY_UNSET']])), ['ERR_TCPAO_KEY_SOURCE ao_policy[0].key[1].key_source'], 'each key source is resolved');
  t.same(
    problems(terminatorToml([[1, 'preferred', 'KEY_ONE']]).replace('peer_ip = "10.0.0.1"', 'peer_ip = "10.0.0.1"\nkeyid = 3')),
    ['ERR_TCPAO_CONFIG_INVALID ao_policy[0].keyid'],
    'the single-key fields cannot be mixed with key tables',
  );
  const overlapping = `${terminatorToml([[1, 'preferred', 'KEY_ONE'], [2, 'accept', 'KEY_TWO']])}\n[[ao_policy]]\nname = "other"\npeer_ip = "10.0.0.0/24"\nkeyid = 2\nmac_alg = "hmac-sha1"\nkey_source = "env:KEY_ONE"`;
  t.same(problems(overlapping), ['ERR_TCPAO_CONFIG_INVALID ao_policy[1]'], 'ids clash with any key of an overlapping policy');
  t.same(
    problems(terminatorToml([[1, 'preferred', 'KEY_ONE']]).replace('[[ao_policy.key]]', '[[ao_policy.key]]\nbogus = 1')),
    ['ERR_TCPAO_CONFIG_INVALID ao_policy[0].key[0]'],
    'unknown keys in a key table (described, not repeated: no near miss of a known name)',
  );
});

t.test('plans: a listener gets new keys first and loses retired and deprecated ones at once', async (t) => {
  const before = generationFromConfig(load(terminatorToml([[1, 'preferred', 'KEY_ONE']])), 1);
  const after = generationFromConfig(load(terminatorToml([[1, 'deprecated', 'KEY_ONE'], [2, 'preferred', 'KEY_TWO']])), 2);
  const fake = new FakeKernelBinding();
  const fd = fake.socket(true, [{ sendId: 1, recvId: 1 }]);
  const desired = keysForPeer(after, '10.0.0.1', 4);
  const plan = planSocket('listener', { installed: fake.binding().getKeys(fd) }, desired.keys, undefined, changedIdentities(before, after));
  t.same(
    plan.actions.map((action) => action.kind),
    ['add', 'delete'],
    'add key 2, then delete key 1',
  );
  const result = applySocketPlan(fake.binding(), fd, plan);
  t.same(result.failures, []);
  t.same(fake.sendIds(fd), [2]);
});

t.test('plans: the terminator asks for the preferred key; the initiator also sends with it', async (t) => {
  const generation = generationFromConfig(load(terminatorToml([[1, 'accept', 'KEY_ONE'], [2, 'preferred', 'KEY_TWO']])), 2);
  const { keys, preferred } = keysForPeer(generation, '10.0.0.1', 4);
  const fake = new FakeKernelBinding();
  const terminatorFd = fake.socket(false, [{ sendId: 1, recvId: 1, good: 5n }], 1, 1);
  const terminatorPlan = planSocket('terminator', { installed: fake.binding().getKeys(terminatorFd), info: fake.binding().getAoInfo(terminatorFd) }, keys, preferred);
  t.same(
    terminatorPlan.actions.map((action) => (action.kind === 'set_info' ? `set current=${action.currentKey} rnext=${action.rnextKey}` : action.kind)),
    ['add', 'set current=undefined rnext=2'],
    'the terminator adds key 2 and moves only RNext (its current key follows the peer)',
  );
  t.same(applySocketPlan(fake.binding(), terminatorFd, terminatorPlan).failures, []);
  t.equal(fake.get(terminatorFd).rnext, 2);
  t.equal(fake.get(terminatorFd).current, 1, 'current stays until the peer asks for key 2');

  const initiatorFd = fake.socket(false, [{ sendId: 1, recvId: 1, good: 5n }], 1, 1);
  const initiatorPlan = planSocket('initiator', { installed: fake.binding().getKeys(initiatorFd), info: fake.binding().getAoInfo(initiatorFd) }, keys, preferred);
  t.same(applySocketPlan(fake.binding(), initiatorFd, initiatorPlan).failures, []);
  t.equal(fake.get(initiatorFd).current, 2, 'the initiator sends with key 2 at once');
  t.equal(fake.get(initiatorFd).rnext, 2);
  t.same(fake.sendIds(initiatorFd), [1, 2], 'key 1 is an accepted key and stays');
});

t.test('plans: a key on its way out waits while it is current, RNext, or the peer has not moved', async (t) => {
  const generation = generationFromConfig(load(terminatorToml([[1, 'deprecated', 'KEY_ONE'], [2, 'preferred', 'KEY_TWO']])), 3);
  const { keys, preferred } = keysForPeer(generation, '10.0.0.1', 4);
  const fake = new FakeKernelBinding();
  const plan = (fd: number) => planSocket('terminator', { installed: fake.binding().getKeys(fd), info: fake.binding().getAoInfo(fd) }, keys, preferred);

  const stillCurrent = fake.socket(false, [{ sendId: 1, recvId: 1, good: 9n }, { sendId: 2, recvId: 2, good: 3n }], 1, 2);
  t.same(plan(stillCurrent).pending.map((entry) => entry.waitingFor), ['current_key'], 'the peer still asks for key 1');
  t.notOk(plan(stillCurrent).actions.some((action) => action.kind === 'delete'), 'no delete is tried');

  const notMoved = fake.socket(false, [{ sendId: 1, recvId: 1, good: 9n }, { sendId: 2, recvId: 2, good: 0n }], 2, 2);
  t.same(plan(notMoved).pending.map((entry) => entry.waitingFor), ['peer_not_moved'], 'no segment signed with key 2 yet');

  const moved = fake.socket(false, [{ sendId: 1, recvId: 1, good: 9n }, { sendId: 2, recvId: 2, good: 4n }], 2, 2);
  const movedPlan = plan(moved);
  t.same(movedPlan.pending, []);
  t.same(applySocketPlan(fake.binding(), moved, movedPlan).failures, []);
  t.same(fake.sendIds(moved), [2], 'key 1 is removed once the peer uses key 2');
});

t.test('plans: new bytes under the same ids are a delete and an add, refused while the key is in use', async (t) => {
  const before = generationFromConfig(load(terminatorToml([[1, 'preferred', 'KEY_ONE'], [2, 'accept', 'KEY_TWO']])), 1);
  const after = generationFromConfig(load(terminatorToml([[1, 'preferred', 'KEY_ONE'], [2, 'accept', 'KEY_TWO_CHANGED']])), 2);
  const changed = changedIdentities(before, after);
  t.equal(changed.size, 1, 'only key 2 changed');
  const { keys, preferred } = keysForPeer(after, '10.0.0.1', 4);
  const fake = new FakeKernelBinding();
  const idle = fake.socket(false, [{ sendId: 1, recvId: 1, good: 1n }, { sendId: 2, recvId: 2, bytes: ENV.KEY_TWO }], 1, 1);
  const idlePlan = planSocket('terminator', { installed: fake.binding().getKeys(idle), info: fake.binding().getAoInfo(idle) }, keys, preferred, changed);
  t.same(idlePlan.actions.map((action) => action.kind), ['delete', 'add']);
  t.same(applySocketPlan(fake.binding(), idle, idlePlan).failures, [], 'no EEXIST: the old key went first');
  t.equal(fake.get(idle).keys.find((key) => key.sendId === 2)?.bytes, ENV.KEY_TWO_CHANGED);

  const busy = fake.socket(false, [{ sendId: 1, recvId: 1, good: 1n }, { sendId: 2, recvId: 2 }], 2, 1);
  const busyPlan = planSocket('terminator', { installed: fake.binding().getKeys(busy), info: fake.binding().getAoInfo(busy) }, keys, preferred, changed);
  t.same(busyPlan.inUseChanges.map((key) => key.sendId), [2], 'key 2 is current here');
});

interface Harness {
  readonly fake: FakeKernelBinding;
  readonly controller: RotationController;
  readonly lines: Record<string, unknown>[];
  readonly listenerFd: number;
  readonly sockets: WireSocket[];
  readonly plans: SidecarConfig[];
  next: () => SidecarConfig;
}

function harness(initial: string): Harness {
  const fake = new FakeKernelBinding();
  const { log, lines } = capture();
  const listenerFd = fake.socket(true, [{ sendId: 1, recvId: 1 }]);
  const sockets: WireSocket[] = [];
  const plans: SidecarConfig[] = [];
  const state: { next: () => SidecarConfig } = { next: () => load(initial) };
  const controller = new RotationController({
    config: load(initial),
    binding: fake.binding(),
    log,
    retryMs: 60_000,
    target: { mode: 'terminator', listenerFd, wireSockets: () => sockets, usePlan: (config) => plans.push(config) },
    load: () => ({ config: state.next(), warnings: [] }),
  });
  t.teardown(() => controller.close());
  return {
    fake,
    controller,
    lines,
    listenerFd,
    sockets,
    plans,
    get next() {
      return state.next;
    },
    set next(value) {
      state.next = value;
    },
  };
}

t.test('controller: a reload adds, moves and removes keys; new connections get the new plan', async (t) => {
  const h = harness(terminatorToml([[1, 'preferred', 'KEY_ONE']]));
  const fd = h.fake.socket(false, [{ sendId: 1, recvId: 1, good: 7n }], 1, 1);
  h.sockets.push({ id: 1, fd, peerAddress: '10.0.0.1', family: 4 });

  h.next = () => load(terminatorToml([[1, 'accept', 'KEY_ONE'], [2, 'preferred', 'KEY_TWO']]));
  const record = await h.controller.reload();
  t.equal(record.result, 'applied');
  t.equal(h.controller.generation, 2);
  t.same(h.fake.sendIds(h.listenerFd), [1, 2], 'the listener holds both keys');
  t.same(h.fake.sendIds(fd), [1, 2], 'the connection holds both keys');
  t.equal(h.fake.get(fd).rnext, 2, 'the connection asks the peer for key 2');
  t.equal(h.plans.length, 1, 'new connections use the new config');

  // The peer follows our RNext: it asks for key 2 and signs with it.
  h.fake.get(fd).current = 2;
  const keyTwo = h.fake.get(fd).keys.find((key) => key.sendId === 2);
  if (keyTwo !== undefined) keyTwo.pktGood = 3n;
  h.next = () => load(terminatorToml([[1, 'deprecated', 'KEY_ONE'], [2, 'preferred', 'KEY_TWO']]));
  t.equal((await h.controller.reload()).result, 'applied');
  t.same(h.fake.sendIds(h.listenerFd), [2], 'the deprecated key leaves the listener');
  t.same(h.fake.sendIds(fd), [2], 'and the connection, whose peer has moved off it');
  t.ok(h.lines.some((line) => line['event'] === 'reload_applied' && line['generation'] === 3));
  const removals = h.lines.filter((line) => line['event'] === 'key_removed').map((line) => `${String(line['socket'])} ${String(line['sendId'])}`);
  t.same(removals.sort(), ['1 1', 'listener 1'], 'each removal is logged with its socket');
});

t.test('controller: a key still in use stays pending and goes on a later retry', async (t) => {
  const h = harness(terminatorToml([[1, 'accept', 'KEY_ONE'], [2, 'preferred', 'KEY_TWO']]));
  const fd = h.fake.socket(false, [{ sendId: 1, recvId: 1, good: 7n }, { sendId: 2, recvId: 2 }], 1, 2);
  h.sockets.push({ id: 4, fd, peerAddress: '10.0.0.1', family: 4 });
  h.next = () => load(terminatorToml([[2, 'preferred', 'KEY_TWO']]));
  const record = await h.controller.reload();
  t.equal(record.result, 'applied');
  t.equal(record.pendingRemovals, 1, 'key 1 waits');
  t.same(h.fake.sendIds(fd), [1, 2]);
  const pending = h.lines.find((line) => line['event'] === 'key_removal_pending');
  t.equal(pending?.['waitingFor'], 'current_key', 'logged: the peer still asks for key 1');
  h.controller.retryPending();
  t.same(h.fake.sendIds(fd), [1, 2], 'a retry while nothing changed removes nothing');
  t.equal(h.lines.filter((line) => line['event'] === 'key_removal_pending').length, 1, 'the wait is logged once');

  h.fake.get(fd).current = 2;
  const keyTwo = h.fake.get(fd).keys.find((key) => key.sendId === 2);
  if (keyTwo !== undefined) keyTwo.pktGood = 1n;
  h.controller.retryPending();
  t.same(h.fake.sendIds(fd), [2], 'removed once the peer moved');
  t.ok(h.lines.some((line) => line['event'] === 'key_removed' && line['sendId'] === 1));
  t.equal(h.controller.pendingRemovals().size, 0);
  t.notOk(h.fake.calls.some((call) => call === `delete ${fd} 1/1` && h.fake.get(fd).current === 1), 'never tried to delete the current key');
});

t.test('controller: a reload with any problem changes nothing', async (t) => {
  const h = harness(terminatorToml([[1, 'preferred', 'KEY_ONE'], [2, 'accept', 'KEY_TWO']]));
  const fd = h.fake.socket(false, [{ sendId: 1, recvId: 1 }, { sendId: 2, recvId: 2 }], 2, 1);
  h.sockets.push({ id: 2, fd, peerAddress: '10.0.0.1', family: 4 });
  const cases: [string, () => SidecarConfig, string][] = [
    ['bad TOML', () => loadConfigText('[terminator', { source: 'x.toml', baseDir: '/', env: ENV }).config, 'ERR_TCPAO_CONFIG_SYNTAX'],
    ['an unset key variable', () => load(terminatorToml([[1, 'preferred', 'KEY_ONE'], [3, 'accept', 'KEY_UNSET']])), 'ERR_TCPAO_KEY_SOURCE'],
    ['a new listen address', () => load(terminatorToml([[1, 'preferred', 'KEY_ONE']], '10.0.0.3:1790')), 'ERR_TCPAO_RELOAD_RESTART_NEEDED'],
    ['new bytes for the current key', () => load(terminatorToml([[1, 'preferred', 'KEY_ONE'], [2, 'accept', 'KEY_TWO_CHANGED']])), 'ERR_TCPAO_RELOAD_KEY_IN_USE'],
  ];
  for (const [what, next, code] of cases) {
    h.next = next;
    const callsBefore = h.fake.calls.length;
    const record = await h.controller.reload();
    t.equal(record.result, 'failed', `${what}: refused`);
    t.same(record.problems.map((problem) => problem.code), [code], `${what}: ${code}`);
    t.equal(h.controller.generation, 1, `${what}: still generation 1`);
    t.equal(h.fake.calls.length, callsBefore, `${what}: no socket was touched`);
    const logged = h.lines.filter((line) => line['event'] === 'reload_failed').at(-1);
    t.same((logged?.['problems'] as { code: string }[]).map((problem) => problem.code), [code], `${what}: logged with its code`);
  }
  t.equal(h.plans.length, 0, 'new connections keep the old config');
  t.equal(h.controller.lastReload?.result, 'failed');
  const output = JSON.stringify(h.lines);
  for (const secret of Object.values(ENV)) t.notOk(output.includes(secret), 'no key bytes in the log');
});

t.test('controller: a connection accepted with a retired key is refused; others are brought up to date', async (t) => {
  const h = harness(terminatorToml([[1, 'preferred', 'KEY_ONE']]));
  h.next = () => load(terminatorToml([[2, 'preferred', 'KEY_TWO']]));
  t.equal((await h.controller.reload()).result, 'applied');
  // Sitting in the accept queue since before the reload: signed with key 1, which is gone.
  const stale = h.fake.socket(false, [{ sendId: 1, recvId: 1 }], 1, 1);
  let refusal: unknown;
  try {
    h.controller.admit({ id: 9, fd: stale, peerAddress: '10.0.0.1', family: 4 }, 'terminator');
  } catch (error) {
    refusal = error;
  }
  t.ok(refusal instanceof ConnectionRefused, 'the connection is refused');
  t.equal((refusal as ConnectionRefused | undefined)?.reason, 'retired_key', 'because its handshake key was retired');
  t.same(h.fake.calls.filter((call) => call.startsWith(`add ${stale}`)), [], 'no key was added to it');
  h.next = () => load(terminatorToml([[2, 'preferred', 'KEY_TWO'], [3, 'accept', 'KEY_ONE']]));
  t.equal((await h.controller.reload()).result, 'applied');
  const queued = h.fake.socket(false, [{ sendId: 2, recvId: 2 }], 2, 2);
  h.controller.admit({ id: 10, fd: queued, peerAddress: '10.0.0.1', family: 4 }, 'terminator');
  t.same(h.fake.sendIds(queued), [2, 3], 'the key added after the SYN arrived is added to the accepted socket');
});

t.test('controller: a reload reads the config and its keys asynchronously, and a FIFO key fails it without freezing the sidecar', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-reload-read-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'terminator.toml');
  writeFileSync(path, terminatorToml([[1, 'preferred', 'KEY_ONE']]));
  const fake = new FakeKernelBinding();
  const { log, lines } = capture();
  const listenerFd = fake.socket(true, [{ sendId: 1, recvId: 1 }]);
  const controller = new RotationController({
    config: loadConfigFile(path, { env: ENV }).config,
    binding: fake.binding(),
    log,
    env: ENV,
    retryMs: 60_000,
    target: { mode: 'terminator', listenerFd, wireSockets: () => [], usePlan: () => {} },
  });
  t.teardown(() => controller.close());

  execFileSync('mkfifo', [join(dir, 'next.fifo')]);
  writeFileSync(path, `${terminatorToml([[1, 'preferred', 'KEY_ONE']])}\n`.replace('key_source = "env:KEY_ONE"', 'key_source = "file:next.fifo"'));
  let turned = false;
  const pending = controller.reload();
  setImmediate(() => {
    turned = true;
  });
  const record = await pending;
  t.ok(turned, 'the event loop kept turning while the reload read its files');
  t.equal(record.result, 'failed');
  t.same(record.problems.map((problem) => `${problem.code} ${problem.path}`), ['ERR_TCPAO_KEY_SOURCE ao_policy[0].key[0].key_source']);
  t.match(record.problems[0]?.message, /next\.fifo is a FIFO, not a regular file/);
  t.equal(controller.generation, 1, 'nothing applied');
  t.ok(lines.some((line) => line['event'] === 'reload_failed'), 'reload_failed is logged');

  writeFileSync(path, terminatorToml([[1, 'accept', 'KEY_ONE'], [2, 'preferred', 'KEY_TWO']]));
  t.equal((await controller.reload()).result, 'applied', 'a good file afterwards applies');
  t.same(fake.sendIds(listenerFd), [1, 2]);
});

t.test('controller: reloads asked for together run one after another, in order', async (t) => {
  const fake = new FakeKernelBinding();
  const { log } = capture();
  const listenerFd = fake.socket(true, [{ sendId: 1, recvId: 1 }]);
  const releases: (() => void)[] = [];
  const configs = [
    load(terminatorToml([[1, 'accept', 'KEY_ONE'], [2, 'preferred', 'KEY_TWO']])),
    load(terminatorToml([[2, 'preferred', 'KEY_TWO']])),
  ];
  let calls = 0;
  const controller = new RotationController({
    config: load(terminatorToml([[1, 'preferred', 'KEY_ONE']])),
    binding: fake.binding(),
    log,
    retryMs: 60_000,
    target: { mode: 'terminator', listenerFd, wireSockets: () => [], usePlan: () => {} },
    load: () => {
      const config = configs[calls++] as SidecarConfig;
      return new Promise((resolve) => releases.push(() => resolve({ config, warnings: [] })));
    },
  });
  t.teardown(() => controller.close());
  const first = controller.reload();
  const second = controller.reload();
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(calls, 1, 'the second reload waits for the first to finish reading and applying');
  releases[0]?.();
  t.equal((await first).generation, 2);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(calls, 2);
  releases[1]?.();
  t.equal((await second).generation, 3, 'applied after the first, never before it');
  t.same(fake.sendIds(listenerFd), [2]);
});

t.test('controller: a reload that moves vrf_ifindex to a device that is not a VRF is undone and reported failed', async (t) => {
  const h = harness(terminatorToml([[1, 'preferred', 'KEY_ONE']]));
  const fd = h.fake.socket(false, [{ sendId: 1, recvId: 1, good: 3n }], 1, 1);
  h.sockets.push({ id: 1, fd, peerAddress: '10.0.0.1', family: 4 });
  h.next = () => load(terminatorToml([[1, 'preferred', 'KEY_ONE']]).replace('peer_ip = "10.0.0.1"', 'peer_ip = "10.0.0.1"\nvrf_ifindex = 7'));
  const record = await h.controller.reload();
  t.equal(record.result, 'failed', 'the reload is recorded as failed');
  t.same(
    record.problems.map((problem) => [problem.code, problem.path, problem.sysCode]),
    [['ERR_TCPAO_RELOAD_KEY_INSTALL', 'the listener', 'EINVAL']],
    'with the failed key install as its problem',
  );
  t.same(h.fake.get(h.listenerFd).keys.map((key) => [key.sendId, key.ifindex]), [[1, 0]], 'the listener keeps its key for the peer');
  t.same(h.fake.get(fd).keys.map((key) => [key.sendId, key.ifindex]), [[1, 0]], 'so does the connection');
  t.equal(h.controller.generation, 1, 'still generation 1');
  t.equal(h.plans.length, 0, 'new connections keep the old config');
  t.notOk(h.fake.calls.some((call) => call.startsWith('delete')), 'no key was deleted');
  const failed = h.lines.filter((line) => line['event'] === 'reload_failed');
  t.same((failed.at(-1)?.['problems'] as { code: string }[] | undefined)?.map((problem) => problem.code), ['ERR_TCPAO_RELOAD_KEY_INSTALL'], 'logged as reload_failed');
  t.notOk(h.lines.some((line) => line['event'] === 'reload_applied'), 'never logged as applied');

  h.fake.vrfDevices.add(7);
  h.next = () => load(terminatorToml([[2, 'preferred', 'KEY_TWO']]).replace('peer_ip = "10.0.0.1"', 'peer_ip = "10.0.0.1"\nvrf_ifindex = 7'));
  t.equal((await h.controller.reload()).result, 'applied', 'a key with new ids in a real VRF applies');
  t.same(h.fake.get(h.listenerFd).keys.map((key) => [key.sendId, key.ifindex]), [[2, 7]], 'and the listener then holds the VRF key only');
});

t.test('controller: a key install that fails on a later socket undoes the changes already made to the earlier ones', async (t) => {
  const h = harness(terminatorToml([[1, 'preferred', 'KEY_ONE'], [2, 'accept', 'KEY_TWO']]));
  h.fake.get(h.listenerFd).keys.push({ ...(h.fake.get(h.listenerFd).keys[0] as FakeSocket['keys'][number]), sendId: 2, recvId: 2, bytes: ENV.KEY_TWO });
  const first = h.fake.socket(false, [{ sendId: 1, recvId: 1, good: 5n }, { sendId: 2, recvId: 2, bytes: ENV.KEY_TWO }], 1, 1);
  const second = h.fake.socket(false, [{ sendId: 1, recvId: 1, good: 5n }, { sendId: 2, recvId: 2, bytes: ENV.KEY_TWO }], 1, 1);
  h.sockets.push({ id: 1, fd: first, peerAddress: '10.0.0.1', family: 4 }, { id: 2, fd: second, peerAddress: '10.0.0.1', family: 4 });
  // Key 3 is new and preferred, key 2 gets new bytes (a replacement), key 1 is retired.
  h.next = () => load(terminatorToml([[2, 'accept', 'KEY_TWO_CHANGED'], [3, 'preferred', 'KEY_ONE']]));
  h.fake.failNextAdd = { fd: second, sendId: 3, code: 'ENOMEM' };
  const record = await h.controller.reload();
  t.equal(record.result, 'failed');
  t.same(record.problems.map((problem) => [problem.code, problem.path, problem.sysCode]), [['ERR_TCPAO_RELOAD_KEY_INSTALL', 'connection 2', 'ENOMEM']]);
  for (const [name, fd] of [['the listener', h.listenerFd], ['connection 1', first], ['connection 2', second]] as const) {
    t.same(h.fake.sendIds(fd), [1, 2], `${name} holds keys 1 and 2 again`);
    t.equal(h.fake.get(fd).keys.find((key) => key.sendId === 2)?.bytes, ENV.KEY_TWO, `${name}: key 2 has its old bytes back`);
  }
  t.equal(h.fake.get(first).rnext, 1, 'connection 1 asks for key 1 again');
  t.ok(h.fake.calls.includes(`add ${first} 3/3`), 'connection 1 had been given key 3 before connection 2 failed');
  t.equal(h.controller.generation, 1);
  t.same(h.controller.pendingRemovals().size, 0, 'nothing is left waiting for removal');
  t.notOk(h.lines.some((line) => line['event'] === 'key_removed'), 'no removal is reported');
});

t.test('controller: a reload whose apply fails wipes the keys it loaded; the running keys stay', async (t) => {
  const h = harness(terminatorToml([[1, 'preferred', 'KEY_ONE']]));
  let loaded: SidecarConfig | undefined;
  h.next = () => {
    loaded = load(terminatorToml([[1, 'accept', 'KEY_ONE'], [2, 'preferred', 'KEY_TWO']]));
    return loaded;
  };
  // Planning reads the listener's keys first; a listener that is gone makes apply throw.
  const listener = h.fake.get(h.listenerFd);
  h.fake.sockets.delete(h.listenerFd);
  const record = await h.controller.reload();
  h.fake.sockets.set(h.listenerFd, listener);
  t.equal(record.result, 'failed');
  t.equal(h.controller.generation, 1, 'nothing was applied');
  const secrets = loaded?.ao_policy.flatMap((policy) => policy.keys.map((key) => key.secret)) ?? [];
  t.equal(secrets.length, 2);
  for (const secret of secrets) t.ok(secret.reveal().every((b) => b === 0), 'a key of the refused config is zeroed');
  const running = h.controller.config.ao_policy[0]?.keys[0]?.secret;
  t.same(Buffer.from(running?.reveal() ?? []), Buffer.from(ENV.KEY_ONE), 'the running config keeps its key');
});
