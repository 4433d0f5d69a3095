/**
 * The container's processes with the real sidecar, on a TCP-AO kernel (the
 * kernel lab): the terminator entrypoint as PID 1 of a pid namespace, the real
 * tcpao-proxy as the sidecar's user, and a stand-in app (fixtures/app-probe.js)
 * as the app's user that holds a relayed session and tries every route to the
 * key. Then `docker stop`'s SIGTERM with that session still open: the
 * sidecar's forced drain finishes before the supervisor's SIGKILL.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { connectAoSocket, skipUnlessAo } from '../helpers/ao.js';
import {
  ENTRYPOINT_DIR,
  ROOT,
  SIDECAR_UID,
  assertNoProcessHoldsKey,
  assertProbeFoundNoKey,
  baseEnv,
  comm,
  isSupervisor,
  jsonLines,
  makeDirs,
  namespaceProcesses,
  nsPid,
  readProc,
  readState,
  startInPidNamespace,
  uids,
  waitFor,
  type Probe,
} from '../deploy/entrypoint-run.js';

const KEY = 'lab-isolation-key-6e1f0a9b8c7d5e4f';
const PAYLOAD = Buffer.from('BMP bytes through the wire leg\n');

t.test('real sidecar: the app cannot reach the key, and a forced drain ends before the supervisor SIGKILLs', async (t) => {
  if (!skipUnlessAo(t)) return;
  const dirs = makeDirs(t);
  const base = 21_000 + (process.pid % 10_000);
  const listenAo = { host: '127.0.0.1', port: base };
  const forwardPlain = `127.0.0.1:${base + 1}`;
  const run = startInPidNamespace(t, path.join(ENTRYPOINT_DIR, 'terminator.sh'), {
    ...baseEnv(dirs),
    TCPAO_PROXY_BIN: path.join(ROOT, 'bin', 'tcpao-proxy'),
    TCPAO_KEY: KEY,
    PEER_IP: '127.0.0.1',
    LISTEN_AO: `${listenAo.host}:${listenAo.port}`,
    FORWARD_PLAIN: forwardPlain,
    APP_CMD: `exec node ${path.join(__dirname, '..', 'deploy', 'fixtures', 'app-probe.js')} ${dirs.stateDir} ${dirs.stagedKeyFile} --listen ${forwardPlain} --hold`,
  });
  // An entrypoint that gave up (doctor, users, paths) says why on its stderr: fail with that, not after the wait.
  await waitFor('the AO listener', () => {
    if (run.child.exitCode !== null || run.child.signalCode !== null) {
      throw new Error(`the entrypoint exited (${run.child.exitCode ?? run.child.signalCode}) before the AO listener:\n${run.stderr}\n${run.stdout}`);
    }
    return jsonLines(run.stdout).find((line) => line.event === 'listener_ao_installed');
  });
  await waitFor('the app', () => readState(dirs, 'app-listening.json'));

  // tini's and the supervisor's argv name --mode too; the sidecar is the node process among them.
  const sidecarHost = namespaceProcesses(run.init() as number).find(
    (pid) => comm(pid) === 'node' && (readProc(pid, 'cmdline')?.toString().split('\0') ?? []).includes('--mode'),
  ) as number;
  t.same(uids(sidecarHost), [SIDECAR_UID, SIDECAR_UID, SIDECAR_UID, SIDECAR_UID], 'the real sidecar runs as its own user');

  // A session through the sidecar, kept open by both ends.
  const wire = await connectAoSocket(t, {
    ...listenAo,
    keys: [{ peer: '127.0.0.1', sendId: 1, recvId: 1, algorithm: 'hmac-sha256', key: Buffer.from(KEY) }],
    timeoutMs: 60_000,
  });
  wire.on('error', () => undefined);
  wire.write(PAYLOAD);
  await waitFor('the bytes at the app', () => (readState<{ bytes: number }>(dirs, 'app-bytes.json')?.bytes === PAYLOAD.length ? true : undefined));
  t.pass('the relayed session reaches the app: the sidecar read the staged key');

  writeFileSync(path.join(dirs.stateDir, 'probe.go'), '');
  const probe = await waitFor('the probe', () => readState<Probe>(dirs, 'probe.json'));
  const supervisor = namespaceProcesses(run.init() as number).find(isSupervisor) as number;
  assertProbeFoundNoKey(t, KEY, probe, nsPid(sidecarHost), nsPid(supervisor));
  assertNoProcessHoldsKey(t, KEY, run);

  // docker stop: SIGTERM to PID 1. The app ignores it and the session stays open, so the drain is forced.
  process.kill(run.init() as number, 'SIGTERM');
  const { code } = await run.exited;
  t.equal(code, 143, 'the container exits 143 (SIGTERM)');
  const sidecarLines = jsonLines(run.stdout);
  const supervisorLines = jsonLines(run.stderr);
  const forced = sidecarLines.find((line) => line.event === 'shutdown_forced');
  const finished = sidecarLines.find((line) => line.event === 'shutdown_finished');
  t.ok(forced, 'the sidecar had to force its drain');
  t.equal(finished?.['clean'], false, 'and logged shutdown_finished');
  const stopped = supervisorLines.find((line) => line.msg === 'both processes stopped');
  t.equal(stopped?.['sidecar_status'], 1, 'the sidecar exited on its own, status 1 (ERR_TCPAO_SHUTDOWN_TIMEOUT), not by SIGKILL');
  t.equal(stopped?.['app_status'], 137, 'the app, which ignored SIGTERM, was killed at the end of the grace');
  const killed = supervisorLines.find((line) => line.msg === 'grace period over; killing what is left');
  // pino writes ISO times, the entrypoint's shell logger epoch milliseconds.
  const millis = (time: unknown): number => (typeof time === 'number' ? time : Date.parse(String(time)));
  t.ok(killed !== undefined && millis(finished?.['time']) <= millis(killed['time']), 'shutdown_finished came before the SIGKILL');
  t.notOk(run.stdout.includes(KEY) || run.stderr.includes(KEY), 'no key in the output');
});
