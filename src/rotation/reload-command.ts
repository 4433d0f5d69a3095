/**
 * `tcpao-proxy reload`: asks a running sidecar to re-read its config and key
 * sources (SIGHUP). The sidecar validates before it applies; its log says
 * reload_applied or reload_failed, and /status shows config.lastReload.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

import TOML from '@iarna/toml';

import { MAX_CONFIG_BYTES } from '../config/load.js';
import { FileReadError, readRegularFileSync } from '../config/read-file.js';

import { usageError, type CliCommand } from '../cli/command.js';
import { PROGRAM } from '../cli/program.js';
import { errorCodeOf, TcpAoError } from '../errors.js';

/** A pid file holds one process id and a newline. */
const MAX_PID_FILE_BYTES = 64;

/** [global] pid_file of a config, read without resolving keys (this command does not need them). */
function pidFileOf(configPath: string): string {
  let document: unknown;
  try {
    // The loader's reader: a config path that is a FIFO or a device is refused, never waited on.
    document = TOML.parse(readRegularFileSync(configPath, MAX_CONFIG_BYTES).toString('utf8'));
  } catch {
    throw usageError(`cannot read [global] pid_file from ${configPath}: the file is missing, not a regular file or not valid TOML (check it with tcpao-proxy check-config)`);
  }
  const global = typeof document === 'object' && document !== null ? (document as Record<string, unknown>)['global'] : undefined;
  const file = typeof global === 'object' && global !== null ? (global as Record<string, unknown>)['pid_file'] : undefined;
  if (typeof file !== 'string' || file === '') {
    throw usageError('the config has no [global] pid_file; give --pid or --pid-file instead');
  }
  return resolve(dirname(configPath), file);
}

function targetError(message: string): TcpAoError {
  return new TcpAoError('ERR_TCPAO_RELOAD_TARGET', message);
}

function parsePid(text: string, where: string): number {
  const trimmed = text.trim();
  if (!/^[1-9][0-9]{0,9}$/.test(trimmed) || Number(trimmed) > 4_194_304) {
    throw targetError(`${where} is not a process id; give the pid of a running ${PROGRAM}`);
  }
  return Number(trimmed);
}

function readPidFile(path: string): number {
  let text: string;
  try {
    text = readRegularFileSync(path, MAX_PID_FILE_BYTES).toString('utf8');
  } catch (error) {
    const failure = error instanceof FileReadError ? error.failure : undefined;
    const why =
      failure === undefined || failure.reason === 'open' || failure.reason === 'read'
        ? (failure?.code ?? 'error')
        : failure.reason === 'not-regular'
          ? `it is a ${failure.kind}, not a regular file`
          : 'too large for a process id';
    throw targetError(`cannot read the pid file ${path} (${why}); is the sidecar running with this pid_file?`);
  }
  return parsePid(text, `the pid file ${path}`);
}

/** SIGHUP ends most programs: only signal a process that is a tcpao-proxy. */
function checkIsSidecar(pid: number): void {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    throw targetError(`no process ${pid} is running; check --pid or the pid file`);
  }
  // The program itself (bin/tcpao-proxy run by node, or an installed tcpao-proxy), not any path containing the name.
  if (!cmdline.split('\0').some((arg) => basename(arg) === PROGRAM)) {
    throw targetError(`process ${pid} is not a ${PROGRAM}; refusing to send it SIGHUP`);
  }
}

export const reloadCommand: CliCommand = {
  name: 'reload',
  summary: 'make a running sidecar re-read its config and keys (SIGHUP)',
  usage: 'reload --pid PID | --pid-file FILE | --config FILE',
  description:
    'Sends SIGHUP to a running sidecar, found by --pid, by --pid-file, or by the pid_file that the\n' +
    '[global] section of --config names. The sidecar re-reads the config and every key source, checks\n' +
    'all of it, and applies the differences without resetting a connection; if anything is wrong it\n' +
    'keeps the old config and logs reload_failed with the reasons. Watch the log or /status\n' +
    '(config.generation, config.lastReload). See docs/key-rotation.md.',
  options: {
    pid: { type: 'string', valueName: 'PID', description: 'process id of the sidecar' },
    'pid-file': { type: 'string', valueName: 'FILE', description: 'file holding the process id (the sidecar\'s pid_file)' },
    config: { type: 'string', short: 'c', valueName: 'FILE', description: 'the sidecar\'s config; its [global] pid_file is read' },
  },
  run(context) {
    const given = (['pid', 'pid-file', 'config'] as const).filter((name) => context.options[name] !== undefined);
    if (given.length !== 1) {
      throw usageError(`give exactly one of --pid, --pid-file or --config (got ${given.length === 0 ? 'none' : given.map((name) => `--${name}`).join(', ')})`);
    }
    let pid: number;
    if (context.options['pid'] !== undefined) {
      pid = parsePid(String(context.options['pid']), '--pid');
    } else if (context.options['pid-file'] !== undefined) {
      pid = readPidFile(resolve(String(context.options['pid-file'])));
    } else {
      pid = readPidFile(pidFileOf(resolve(String(context.options['config']))));
    }
    checkIsSidecar(pid);
    try {
      process.kill(pid, 'SIGHUP');
    } catch (error) {
      throw targetError(`cannot signal process ${pid} (${errorCodeOf(error) ?? 'error'}); run as the sidecar's user or root`);
    }
    context.io.stdout(`sent SIGHUP to ${PROGRAM} ${pid}; its log says reload_applied or reload_failed (also /status config.lastReload)\n`);
    return 0;
  },
};
