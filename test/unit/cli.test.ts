/**
 * The CLI dispatcher in process (fake stdout/stderr, a recording runSidecar)
 * and a few runs of the real bin/tcpao-proxy for the process wiring.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import t from 'tap';

import { getCommand, mainHelp, registerCommand, runCli, type CliDeps, type CliIo } from '../../src/cli.js';
import type { SidecarConfig } from '../../src/config/load.js';
import { TcpAoError } from '../../src/errors.js';
import type { Logger } from '../../src/log.js';

const REPO = resolve(__dirname, '..', '..', '..');
const GOOD = join(REPO, 'test', 'fixtures', 'config', 'good');
const KEY = 'cli-test-key-Hs83Kd';
/** Captured before the test below registers a command of its own. */
const ORIGINAL_HELP = mainHelp();
const COMMANDS = mainHelp()
  .split('Commands:\n')[1]
  ?.split('\n\n')[0]
  ?.split('\n')
  .map((line) => line.trim().split(/\s+/)[0])
  .join(', ');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

interface Harness {
  readonly io: CliIo;
  readonly deps: CliDeps;
  readonly stdout: string[];
  readonly stderr: string[];
  readonly logLines: string[];
  readonly sidecarCalls: { config: SidecarConfig; logger: Logger }[];
}

function harness(sidecar: (config: SidecarConfig, logger: Logger) => Promise<void> = async () => {}): Harness {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const logLines: string[] = [];
  const sidecarCalls: { config: SidecarConfig; logger: Logger }[] = [];
  return {
    stdout,
    stderr,
    logLines,
    sidecarCalls,
    io: { stdout: (text) => void stdout.push(text), stderr: (text) => void stderr.push(text), env: { TCPAO_KEY: KEY } },
    deps: {
      runSidecar: async (config, logger) => {
        sidecarCalls.push({ config, logger });
        await sidecar(config, logger);
      },
      logDestination: { write: (line: string) => void logLines.push(line) },
    },
  };
}

async function cli(argv: string[], h = harness()): Promise<Harness & { status: number }> {
  const status = await runCli(argv, h.io, h.deps);
  return { ...h, status };
}

function stderrLines(h: Harness): string[] {
  return h.stderr.join('').split('\n').filter((line) => line !== '');
}

t.test('help: overall, per command, and through the help command', async (t) => {
  for (const argv of [['--help'], ['-h'], ['help'], ['--mode', 'initiator', '--help'], ['--help=yes'], ['--bogus', '--help']]) {
    const r = await cli(argv);
    t.equal(r.status, 0, argv.join(' '));
    t.equal(r.stdout.join(''), mainHelp());
    t.same(r.stderr, []);
  }
  const help = mainHelp();
  t.match(help, 'Usage: tcpao-proxy --mode initiator|terminator --config FILE');
  for (const name of ['check-config', 'version', 'help']) t.match(help, new RegExp(`^  ${name} +\\S`, 'm'), `lists ${name}`);
  t.match(help, '-V, --version');
  for (const argv of [['check-config', '--help'], ['help', 'check-config'], ['check-config', '-h', '--config']]) {
    const r = await cli(argv);
    t.equal(r.status, 0, argv.join(' '));
    t.match(r.stdout.join(''), /^Usage: tcpao-proxy check-config --config FILE \[--mode MODE\]\n/);
    t.match(r.stdout.join(''), /-c, --config FILE/);
  }
  const version = await cli(['version', '--help']);
  t.match(version.stdout.join(''), /^Usage: tcpao-proxy version\n/);
});

t.test('version: --version, -V and the version command', async (t) => {
  for (const argv of [['--version'], ['-V'], ['version']]) {
    const r = await cli(argv);
    t.equal(r.status, 0);
    t.equal(r.stdout.join(''), `tcpao-proxy ${VERSION} (node ${process.version}, ${process.platform} ${process.arch})\n`);
  }
});

t.test('usage errors: one coded line each, exit 2, nothing run', async (t) => {
  const cases: [string[], string[]][] = [
    [[], ['no command given; run tcpao-proxy --mode initiator|terminator --config FILE, or tcpao-proxy --help']],
    [['frobnicate'], [`unknown command; the commands are ${COMMANDS} (see tcpao-proxy --help)`]],
    [['--config', 'x.toml'], ['--mode is required (--mode MODE)']],
    [['--mode', 'initiator'], ['--config is required (--config FILE)']],
    [['--mode', 'sideways', '--config', 'x'], ['--mode must be initiator or terminator']],
    [['--mode', 'initiator', '--config'], ['--config needs a value (FILE)']],
    [['--mode', 'initiator', '--config', '--verbose'], ['--config needs a value (FILE)']],
    [['--mode', 'initiator', '-c', 'a', '-c', 'b'], ['--config is given more than once']],
    [['--mode', 'initiator', '-c', 'a', 'extra'], ['unexpected argument; running the sidecar takes options only']],
    [['--mode', 'initiator', '-c', 'a', '--verbose'], ['unknown option --verbose; run tcpao-proxy --help']],
    [['--mode', 'initiator', '-c', 'a', '-x'], ['unknown option -x; run tcpao-proxy --help']],
    [['--mode', 'initiator', '-c', 'a', '--Odd_Name'], ['unknown option; run tcpao-proxy --help']],
    [['check-config'], ['--config is required (--config FILE)']],
    [['check-config', '--config', 'a', '--frob'], ['unknown option --frob; run tcpao-proxy check-config --help']],
    [['version', 'now'], ['unexpected argument; tcpao-proxy version takes options only']],
    [['help', 'frobnicate'], [`unknown command; the commands are ${COMMANDS}`]],
    [['--mode', 'initiator', '-c', 'a', '--mode', 'initiator', '--bogus', 'x'], [
      '--mode is given more than once',
      'unknown option --bogus; run tcpao-proxy --help',
      'unexpected argument; running the sidecar takes options only',
    ]],
  ];
  for (const [argv, messages] of cases) {
    const r = await cli(argv);
    t.equal(r.status, 2, `exit 2: ${argv.join(' ')}`);
    t.same(stderrLines(r), messages.map((message) => `tcpao-proxy: ERR_TCPAO_USAGE: ${message}`), argv.join(' '));
    t.same(r.stdout, []);
    t.same(r.sidecarCalls, [], 'the sidecar is not started');
  }
});

t.test('keys are never taken from argv, and never echoed', async (t) => {
  const secret = 'argv-secret-Zp0qW8';
  for (const argv of [
    ['--mode', 'initiator', '--config', 'c.toml', `--key=${secret}`],
    ['--mode', 'initiator', '--config', 'c.toml', '--tcpao-key', secret],
    ['--mode', 'initiator', '--config', 'c.toml', `--psk=${secret}`],
    [secret],
    ['check-config', '--config', 'c.toml', secret],
  ]) {
    const r = await cli(argv);
    t.equal(r.status, 2);
    t.notOk(r.stderr.join('').includes(secret), `not echoed: ${argv.join(' ').replace(secret, 'SECRET')}`);
  }
  const r = await cli(['--mode', 'initiator', '--config', 'c.toml', `--key=${secret}`]);
  t.same(stderrLines(r), [
    'tcpao-proxy: ERR_TCPAO_USAGE: unknown option --key; keys are never taken from the command line: set key_source in the config',
  ]);
});

t.test('running: the config is loaded, logged without keys, and handed to runSidecar frozen', async (t) => {
  const r = await cli(['--mode', 'initiator', '--config', join(GOOD, 'spec-initiator.toml')]);
  t.equal(r.status, 0);
  t.same(r.stderr, []);
  t.equal(r.sidecarCalls.length, 1);
  const call = r.sidecarCalls[0];
  if (call === undefined) return;
  t.equal(call.config.mode, 'initiator');
  t.ok(Object.isFrozen(call.config));
  t.equal(call.config.activePolicies.length, 1);
  t.same(Buffer.from(call.config.activePolicies[0]?.key.reveal() ?? []), Buffer.from(KEY));
  const records = r.logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
  const loaded = records.find((record) => record['event'] === 'config_loaded');
  t.match(loaded, {
    level: 'info',
    module: 'main',
    msg: 'config loaded',
    mode: 'initiator',
    listen_plain: '127.0.0.1:5000',
    remote_ao: '10.10.10.2:1790',
    policies: [{ name: 'bmp-wire', peer: '10.10.10.2/32', peer_port: 1790, send_id: 1, recv_id: 1, mac_alg: 'hmac-sha256', key_length: KEY.length }],
  });
  for (const encoded of [KEY, Buffer.from(KEY).toString('hex'), Buffer.from(KEY).toString('base64')]) {
    t.notOk(r.logLines.join('').includes(encoded), 'no key bytes in the log');
  }
});

t.test('running: warnings are logged at warn level', async (t) => {
  const r = await cli(['--mode', 'initiator', '--config', join(GOOD, 'initiator-all-fields.toml')], {
    ...harness(),
    io: { ...harness().io, env: { TCPAO_KEY_HEX: '00112233', TCPAO_KEY_B64: 'AAEC', TCPAO_KEY: KEY } },
  });
  t.equal(r.status, 0, r.stderr.join(''));
  // initiator-all-fields asks for the human log format.
  const warn = r.logLines.find((line) => line.includes(' WARN  [main] not used on this initiator'));
  t.ok(warn, 'a human-format warning line');
  t.match(warn, 'event=config_warning code=WARN_TCPAO_POLICY_UNUSED path=ao_policy[2]', 'the warning carries its code');
});

t.test('running: --mode must match the config; nothing is started otherwise', async (t) => {
  const r = await cli(['--mode', 'terminator', '--config', join(GOOD, 'spec-initiator.toml')]);
  t.equal(r.status, 2);
  t.same(stderrLines(r), [
    "tcpao-proxy: ERR_TCPAO_MODE_MISMATCH: initiator: --mode terminator was given but this config has a [initiator] section; run with --mode initiator or use the terminator's config",
  ]);
  t.same(r.sidecarCalls, []);
  t.same(r.logLines, [], 'nothing logged before the config is valid');
});

t.test('running: a runtime TcpAoError is one line on stderr, exit 1, logged without a stack at info', async (t) => {
  const h = harness(async () => {
    throw new TcpAoError('ERR_TCPAO_UNSUPPORTED', 'the kernel was built without CONFIG_TCP_AO', { errno: 92, sysCode: 'ENOPROTOOPT' });
  });
  const r = await cli(['--mode', 'initiator', '--config', join(GOOD, 'spec-initiator.toml')], h);
  t.equal(r.status, 1);
  t.same(stderrLines(r), ['tcpao-proxy: ERR_TCPAO_UNSUPPORTED: the kernel was built without CONFIG_TCP_AO']);
  const records = r.logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
  t.match(records.find((record) => record['event'] === 'fatal'), { level: 'error', code: 'ERR_TCPAO_UNSUPPORTED', errno: 92, sysCode: 'ENOPROTOOPT' });
  t.notOk(r.logLines.join('').includes('    at '), 'no stack at info level');
});

t.test('running: a user error from the sidecar exits 2', async (t) => {
  const h = harness(async () => {
    throw new TcpAoError('ERR_TCPAO_USAGE', 'some late usage problem');
  });
  const r = await cli(['--mode', 'initiator', '--config', join(GOOD, 'spec-initiator.toml')], h);
  t.equal(r.status, 2);
  t.same(stderrLines(r), ['tcpao-proxy: ERR_TCPAO_USAGE: some late usage problem']);
});

t.test('running: an unexpected error is ERR_TCPAO_INTERNAL; its stack reaches the log at debug level only', async (t) => {
  const boom = async () => {
    throw new RangeError('index out of\nrange');
  };
  const info = await cli(['--mode', 'initiator', '--config', join(GOOD, 'spec-initiator.toml')], harness(boom));
  t.equal(info.status, 1);
  t.same(stderrLines(info), [
    'tcpao-proxy: ERR_TCPAO_INTERNAL: unexpected error: index out of range; this is a bug (set log_level = "debug" for the stack)',
  ]);
  t.notOk(info.logLines.join('').includes('    at '), 'no stack in the log at info level');

  // initiator-all-fields sets log_level = "debug" (and the human format).
  const h = harness(boom);
  const debug = await cli(['--mode', 'initiator', '--config', join(GOOD, 'initiator-all-fields.toml')], {
    ...h,
    io: { ...h.io, env: { TCPAO_KEY_HEX: '00112233', TCPAO_KEY_B64: 'AAEC', TCPAO_KEY: KEY } },
  });
  t.equal(debug.status, 1);
  t.notOk(debug.stderr.join('').includes('    at '), 'never a stack on stderr');
  t.ok(debug.logLines.some((line) => line.includes('DEBUG [main] internal error detail') && line.includes('RangeError')), 'stack logged at debug');
});

t.test('registerCommand adds a subcommand with one call', async (t) => {
  const seen: string[] = [];
  registerCommand({
    name: 'unit-probe',
    summary: 'a command registered by a test',
    usage: 'unit-probe [--flag] NAME',
    description: 'Records its arguments.',
    options: { flag: { type: 'boolean', description: 'a flag' } },
    positionals: ['NAME'],
    run: ({ options, positionals }) => {
      seen.push(`${String(options['flag'])} ${positionals.join(',')}`);
      return 0;
    },
  });
  t.ok(getCommand('unit-probe'));
  t.match(mainHelp(), /^  unit-probe +a command registered by a test$/m);
  t.equal((await cli(['unit-probe', '--flag', 'x'])).status, 0);
  t.same(seen, ['true x']);
  t.equal((await cli(['unit-probe', 'x', 'y'])).status, 2, 'positionals are limited to those declared');
  t.throws(() => registerCommand({ ...(getCommand('unit-probe') as NonNullable<ReturnType<typeof getCommand>>) }), TypeError);
  t.throws(() => registerCommand({ ...(getCommand('unit-probe') as NonNullable<ReturnType<typeof getCommand>>), name: 'Bad Name' }), TypeError);
});

function runBin(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [join(REPO, 'bin', 'tcpao-proxy'), ...args], { env: { PATH: process.env['PATH'] ?? '', ...env } }, (error, stdout, stderr) => {
      done({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

t.test('the real binary: exit statuses and streams', async (t) => {
  const help = await runBin(['--help']);
  t.equal(help.status, 0);
  t.equal(help.stdout, ORIGINAL_HELP);
  t.equal(help.stderr, '');
  const version = await runBin(['--version']);
  t.equal(version.status, 0);
  t.match(version.stdout, `tcpao-proxy ${VERSION} `);
  const usage = await runBin([]);
  t.equal(usage.status, 2);
  t.match(usage.stderr, /^tcpao-proxy: ERR_TCPAO_USAGE: no command given/);
  t.equal(usage.stdout, '');
  const check = await runBin(['check-config', '-c', join(GOOD, 'spec-terminator.toml')], { TCPAO_KEY: KEY });
  t.equal(check.status, 0);
  t.match(check.stdout, 'valid terminator config');
  t.notOk(check.stdout.includes(KEY));
});
