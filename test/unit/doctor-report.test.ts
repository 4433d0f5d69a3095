// Rendering the doctor's report (aligned human text, colour only on request,
// the stable JSON schema) and the doctor command's wiring: exit statuses,
// --json, colour rules and usage errors through the real CLI dispatcher.
import t from 'tap';

import { runCli, type CliIo } from '../../src/cli.js';
import { createDoctorCommand } from '../../src/doctor/command.js';
import { buildReport, renderHuman, renderJson, summarise } from '../../src/doctor/report.js';
import type { CheckResult, HostFacts } from '../../src/doctor/types.js';
import { fakeDeps } from './doctor-fakes.js';
import { fakeDoctorBinding, NO_TCP_AO } from '../helpers/fake-bindings.js';

const HOST: HostFacts = {
  hostname: 'h1',
  kernel: '6.12.48',
  arch: 'x64',
  node: 'v20.0.0',
  uid: 0,
  generatedAt: '2026-01-02T03:04:05.000Z',
  config: '/etc/tcpao-proxy/config.toml',
};

const CHECKS: CheckResult[] = [
  { id: 'kernel', title: 'Kernel version and config', status: 'pass', finding: 'kernel 6.12.48, CONFIG_TCP_AO=y in /proc/config.gz' },
  { id: 'ao.probe', title: 'TCP-AO runtime probe', status: 'fail', finding: 'kernel built without CONFIG_TCP_AO', remedy: 'boot a kernel with it' },
  { id: 'app.forward_plain', title: 'Local app', status: 'warn', finding: 'not yet up', remedy: 'start the app', detail: { address: '127.0.0.1:1' } },
  { id: 'mac.hmac-sha1', title: 'MAC algorithm hmac-sha1', status: 'skip', finding: 'the TCP-AO probe failed' },
];

t.test('summary and verdict', async (t) => {
  t.same(summarise(CHECKS), { pass: 1, warn: 1, fail: 1, skip: 1 });
  t.equal(buildReport(HOST, CHECKS).ok, false);
  t.equal(buildReport(HOST, CHECKS.filter((c) => c.status !== 'fail')).ok, true, 'warnings and skips do not fail');
  t.equal(buildReport(HOST, []).ok, true);
});

t.test('human output: aligned columns, remedies indented under the finding, no colour unless asked', async (t) => {
  const text = renderHuman(buildReport(HOST, CHECKS), { colour: false });
  const lines = text.split('\n');
  t.equal(lines[0], 'tcpao-proxy doctor: h1, kernel 6.12.48, config /etc/tcpao-proxy/config.toml');
  const rows = lines.filter((line) => /^ {2}(PASS|WARN|FAIL|SKIP) {2}/.test(line));
  t.equal(rows.length, CHECKS.length, 'one row per check');
  const findingColumns = rows.map((row, index) => row.indexOf((CHECKS[index] as CheckResult).finding));
  t.equal(new Set(findingColumns).size, 1, 'every finding starts in the same column');
  const remedies = lines.filter((line) => line.trimStart().startsWith('remedy: '));
  t.same(remedies.map((line) => line.trim()), ['remedy: boot a kernel with it', 'remedy: start the app']);
  for (const line of remedies) t.equal(line.indexOf('remedy: '), findingColumns[0], 'remedy sits under the finding');
  t.match(lines[lines.length - 2], /^1 pass, 1 warn, 1 fail, 1 skip: NOT READY/);
  t.notMatch(text, /\u001b\[/, 'no escape codes');

  const coloured = renderHuman(buildReport(HOST, CHECKS), { colour: true });
  t.match(coloured, /\u001b\[31mFAIL\u001b\[0m/);
  t.match(coloured, /\u001b\[32mPASS\u001b\[0m/);
});

t.test('JSON output: the v1 schema, keys in a fixed order', async (t) => {
  const json = renderJson(buildReport(HOST, CHECKS));
  const parsed = JSON.parse(json) as Record<string, unknown>;
  t.same(Object.keys(parsed), ['schema', 'host', 'checks', 'summary', 'ok']);
  t.equal(parsed['schema'], 'tcpao-proxy.doctor/v1');
  t.same(parsed['host'], HOST);
  const checks = parsed['checks'] as Record<string, unknown>[];
  t.same(Object.keys(checks[0] as object), ['id', 'title', 'status', 'finding']);
  t.same(Object.keys(checks[2] as object), ['id', 'title', 'status', 'finding', 'remedy', 'detail']);
  t.same(parsed['summary'], { pass: 1, warn: 1, fail: 1, skip: 1 });
  t.equal(parsed['ok'], false);
  t.ok(json.endsWith('}\n'), 'one trailing newline');
});

interface Captured {
  readonly io: CliIo;
  readonly out: string[];
  readonly err: string[];
}

function capture(env: NodeJS.ProcessEnv = {}): Captured {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (text) => out.push(text), stderr: (text) => err.push(text), env }, out, err };
}

const noSidecar = { runSidecar: async (): Promise<void> => undefined };

t.test('the command: exit 1 when a check fails, 0 when none does, --json carries the same', async (t) => {
  const failing = createDoctorCommand({ deps: () => fakeDeps({ binding: fakeDoctorBinding({ probe: NO_TCP_AO }) }), stdoutIsTty: () => false });
  const human = capture();
  t.equal(await failing.run({ options: {}, positionals: [], io: human.io, deps: noSidecar }), 1);
  t.match(human.out.join(''), /FAIL {2}TCP-AO runtime probe +kernel built without CONFIG_TCP_AO/);
  t.same(human.err, [], 'nothing on stderr');

  const json = capture();
  t.equal(await failing.run({ options: { json: true }, positionals: [], io: json.io, deps: noSidecar }), 1);
  const report = JSON.parse(json.out.join('')) as { ok: boolean; checks: CheckResult[] };
  t.equal(report.ok, false);
  const probe = report.checks.find((c) => c.id === 'ao.probe');
  t.equal(probe?.status, 'fail');
  t.equal(probe?.finding, 'kernel built without CONFIG_TCP_AO');
  t.match(probe?.remedy, /CONFIG_TCP_AO=y/);

  const passing = createDoctorCommand({ deps: () => fakeDeps(), stdoutIsTty: () => false });
  const ok = capture();
  t.equal(await passing.run({ options: {}, positionals: [], io: ok.io, deps: noSidecar }), 0);
  t.match(ok.out.join(''), /nothing fails/);
});

t.test('the command: colour only on a TTY without NO_COLOR', async (t) => {
  const onTty = createDoctorCommand({ deps: () => fakeDeps(), stdoutIsTty: () => true });
  const offTty = createDoctorCommand({ deps: () => fakeDeps(), stdoutIsTty: () => false });
  const run = async (command: typeof onTty, env: NodeJS.ProcessEnv): Promise<string> => {
    const c = capture(env);
    await command.run({ options: {}, positionals: [], io: c.io, deps: noSidecar });
    return c.out.join('');
  };
  t.match(await run(onTty, {}), /\u001b\[32mPASS/, 'a TTY gets colour');
  t.notMatch(await run(onTty, { NO_COLOR: '1' }), /\u001b\[/, 'NO_COLOR turns it off');
  t.match(await run(onTty, { NO_COLOR: '' }), /\u001b\[/, 'an empty NO_COLOR counts as unset');
  t.notMatch(await run(offTty, {}), /\u001b\[/, 'a pipe gets none');
});

t.test('usage errors: one coded line, exit 2', async (t) => {
  const unknown = capture();
  t.equal(await runCli(['doctor', '--frobnicate'], unknown.io, noSidecar), 2);
  t.same(unknown.out, []);
  t.equal(unknown.err.length, 1);
  t.match(unknown.err[0], /^tcpao-proxy: ERR_TCPAO_USAGE: unknown option\b.*frobnicate[^\n]*\n$/);

  const modeAlone = capture();
  t.equal(await runCli(['doctor', '--mode', 'terminator'], modeAlone.io, noSidecar), 2);
  t.match(modeAlone.err.join(''), /^tcpao-proxy: ERR_TCPAO_USAGE: --mode checks a config against a side; give --config FILE too/);

  const badMode = capture();
  t.equal(await runCli(['doctor', '--config', 'x.toml', '--mode', 'both'], badMode.io, noSidecar), 2);
  t.match(badMode.err.join(''), /^tcpao-proxy: ERR_TCPAO_USAGE: --mode\b.*initiator or terminator[^\n]*\n$/);

  const help = capture();
  t.equal(await runCli(['doctor', '--help'], help.io, noSidecar), 0);
  t.match(help.out.join(''), /^Usage: tcpao-proxy doctor \[--config FILE\] \[--mode MODE\] \[--json\]/);
  t.match(help.out.join(''), /--json +print the report as JSON/);
});
