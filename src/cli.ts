/**
 * tcpao-proxy's command line: the subcommand table, the run and check-config
 * commands and the main help. The command framework (options, usage errors,
 * exit statuses, error lines) is cli/command.ts.
 *
 *   tcpao-proxy --mode initiator|terminator --config FILE   run the sidecar
 *   tcpao-proxy <command> [options]                          see SUBCOMMANDS
 *
 * Bad input is reported as one line per problem on stderr,
 * "tcpao-proxy: CODE: what is wrong and what to do", with exit status 2 and
 * no stack trace. Keys are never accepted on the command line.
 */
import type { DestinationStream } from 'pino';

import {
  commandHelp,
  errorLine,
  EXIT_OK,
  EXIT_USAGE,
  formatOptions,
  optionWidth,
  parseCommandArgs,
  reportError as reportCommandError,
  usageError,
  type CliCommand,
  type CliIo,
  type CommandContext,
  type OptionSpec,
} from './cli/command.js';
import { PROGRAM, TCPAO_PROXY, versionLine } from './cli/program.js';
import { formatEndpoint, formatPrefix } from './config/address.js';
import { formatKeySource } from './config/keys.js';
import { ConfigError, loadConfigFile, type LoadedConfig, type SidecarConfig } from './config/load.js';
import { describePolicy } from './policy/select.js';
import { MODES, type Mode } from './config/schema.js';
import { doctorCommand } from './doctor/command.js';
import { renderConfigCommand } from './deploy/render-command.js';
import { reloadCommand } from './rotation/reload-command.js';
import { createLogger, moduleLogger, type Logger } from './log.js';

export type { CliIo } from './cli/command.js';

export interface CliDeps {
  /** Runs the sidecar until it has shut down; rejects on a startup or runtime failure. */
  readonly runSidecar: (config: SidecarConfig, logger: Logger) => Promise<void>;
  /** Where the sidecar's log lines go; stdout when absent. */
  readonly logDestination?: DestinationStream;
}

const MODE_OPTION: OptionSpec = {
  type: 'string',
  valueName: 'MODE',
  choices: MODES,
  description: 'initiator or terminator; must match the config\'s [initiator] or [terminator] section',
};

const CONFIG_OPTION: OptionSpec = {
  type: 'string',
  short: 'c',
  valueName: 'FILE',
  required: true,
  description: 'the TOML config file (see docs/configuration.md)',
};

function commandList(): string {
  return [...commands.keys()].join(', ');
}

const checkConfigCommand: CliCommand = {
  name: 'check-config',
  summary: 'validate a config and its keys without printing any key',
  usage: 'check-config --config FILE [--mode MODE]',
  description:
    'Validates the config file, resolves every key_source and checks each key\'s length, then prints a\n' +
    'summary: the mode, the listeners, and each policy with its key ids, algorithm and key length.\n' +
    'Key bytes are never printed. Exit status 0 when valid, 2 with one line per problem otherwise.\n' +
    'The kernel is not consulted; "tcpao-proxy doctor" checks the host.',
  options: { config: CONFIG_OPTION, mode: { ...MODE_OPTION, description: 'also check that the config is for this side' } },
  run(context) {
    const loaded = loadConfigFile(context.options['config'] as string, configLoadOptions(context));
    context.io.stdout(describeConfig(loaded));
    return EXIT_OK;
  },
};

const versionCommand: CliCommand = {
  name: 'version',
  summary: 'print the version',
  usage: 'version',
  description: 'Prints the version of tcpao-proxy and of the Node runtime it runs on.',
  options: {},
  run(context) {
    context.io.stdout(versionLine());
    return EXIT_OK;
  },
};

const helpCommand: CliCommand = {
  name: 'help',
  summary: 'show help for a command',
  usage: 'help [COMMAND]',
  description: 'Shows the overall help, or the help of COMMAND.',
  options: {},
  positionals: ['COMMAND'],
  run(context) {
    const name = context.positionals[0];
    if (name === undefined) {
      context.io.stdout(mainHelp());
      return EXIT_OK;
    }
    const command = commands.get(name);
    if (command === undefined) throw usageError(`unknown command; the commands are ${commandList()}`);
    context.io.stdout(commandHelp(TCPAO_PROXY, command));
    return EXIT_OK;
  },
};

/** Running the sidecar: the command used when the first argument is an option. */
export const runCommand: CliCommand<CliDeps> = {
  name: '',
  summary: 'run the sidecar',
  subject: 'running the sidecar',
  usage: '--mode initiator|terminator --config FILE',
  description:
    'Runs the sidecar. As an initiator it accepts plain TCP on listen_plain and relays each connection to\n' +
    'remote_ao over TCP-AO; as a terminator it accepts TCP-AO on listen_ao and relays each authenticated\n' +
    'connection to forward_plain. Logs go to stdout; a fatal error is one line on stderr.\n' +
    'Exit status: 0 after a clean shutdown, 1 on a runtime failure, 2 on a bad command line or config.',
  options: {
    mode: { ...MODE_OPTION, required: true },
    config: CONFIG_OPTION,
  },
  async run(context) {
    const loaded = loadConfigFile(context.options['config'] as string, configLoadOptions(context));
    const { config } = loaded;
    const logger = createLogger({ format: config.global.log_format, level: config.global.log_level }, context.deps.logDestination);
    context.io.onLogger?.(logger);
    const log = moduleLogger(logger, 'main');
    log.info({ event: 'config_loaded', ...describeForLog(loaded.config) }, 'config loaded');
    for (const warning of loaded.warnings) log.warn({ event: 'config_warning', code: warning.code, path: warning.path }, warning.message);
    try {
      await context.deps.runSidecar(config, logger);
      return EXIT_OK;
    } catch (err) {
      return reportError(err, context.io, log);
    }
  },
};

function configLoadOptions(context: CommandContext): { mode?: Mode; env: NodeJS.ProcessEnv } {
  const mode = context.options['mode'];
  return typeof mode === 'string' ? { mode: mode as Mode, env: context.io.env } : { env: context.io.env };
}

/**
 * Subcommands, in help order. Adding a command is one line here (or a
 * registerCommand call from its own module).
 */
const SUBCOMMANDS: readonly CliCommand<CliDeps>[] = [
  checkConfigCommand,
  doctorCommand,
  renderConfigCommand,
  reloadCommand,
  versionCommand,
  helpCommand,
];

const commands = new Map<string, CliCommand<CliDeps>>(SUBCOMMANDS.map((command) => [command.name, command]));

export function registerCommand(command: CliCommand<CliDeps>): void {
  if (!/^[a-z][a-z0-9-]*$/.test(command.name)) throw new TypeError(`invalid command name "${command.name}"`);
  if (commands.has(command.name)) throw new TypeError(`command "${command.name}" is already registered`);
  commands.set(command.name, command);
}

export function getCommand(name: string): CliCommand<CliDeps> | undefined {
  return commands.get(name);
}

export function mainHelp(): string {
  const list = [...commands.values()];
  const width = Math.max(...list.map((command) => command.name.length)) + 3;
  return (
    `Usage: ${PROGRAM} ${runCommand.usage}\n` +
    `       ${PROGRAM} <command> [options]\n\n` +
    'A TCP-AO (RFC 5925) sidecar: an initiator adds TCP-AO to a local plain TCP client\'s connection,\n' +
    'a terminator accepts TCP-AO connections and relays them to a local plain TCP server.\n\n' +
    `Commands:\n${list.map((command) => `  ${command.name.padEnd(width)}${command.summary}`).join('\n')}\n\n` +
    `Options when running the sidecar:\n${formatOptions(runCommand.options)}\n` +
    `  -V, --version${' '.repeat(Math.max(2, optionWidth(runCommand.options) - 13))}print the version and exit\n\n` +
    `Run "${PROGRAM} <command> --help" for a command's options.\n` +
    'Keys are never given on the command line: each [[ao_policy]] names its key_source (env: or file:).\n' +
    'Exit status: 0 success, 1 runtime failure, 2 bad command line or config.\n'
  );
}

/** Runs the CLI and returns the exit status; never throws. */
export async function runCli(argv: readonly string[], io: CliIo, deps: CliDeps): Promise<number> {
  try {
    const first = argv[0];
    if (first === undefined) {
      throw usageError(`no command given; run ${PROGRAM} --mode initiator|terminator --config FILE, or ${PROGRAM} --help`);
    }
    if (argv.length === 1 && (first === '--version' || first === '-V')) {
      io.stdout(versionLine());
      return EXIT_OK;
    }
    let command: CliCommand<CliDeps>;
    let rest: readonly string[];
    if (first.startsWith('-')) {
      command = runCommand;
      rest = argv;
    } else {
      const found = commands.get(first);
      if (found === undefined) throw usageError(`unknown command; the commands are ${commandList()} (see ${PROGRAM} --help)`);
      command = found;
      rest = argv.slice(1);
    }
    const parsed = parseCommandArgs(TCPAO_PROXY, command, rest);
    if (parsed.help) {
      io.stdout(command === runCommand ? mainHelp() : commandHelp(TCPAO_PROXY, command));
      return EXIT_OK;
    }
    return await command.run({ options: parsed.options, positionals: parsed.positionals, io, deps });
  } catch (err) {
    return reportError(err, io, undefined);
  }
}

/**
 * Prints an error as one line per problem (a config error: one per config
 * problem) and returns the exit status; see reportError in cli/command.ts.
 */
export function reportError(err: unknown, io: CliIo, log: Logger | undefined): number {
  const writeLine = (line: string): void => io.stderr(`${line}\n`);
  if (err instanceof ConfigError) {
    for (const problem of err.problems) writeLine(errorLine(TCPAO_PROXY, problem.code, `${problem.path}: ${problem.message}`));
    return EXIT_USAGE;
  }
  return reportCommandError(TCPAO_PROXY, err, writeLine, log);
}

/** Loggable summary of a config: addresses, policy ids, algorithms, key lengths. */
export function describeForLog(config: SidecarConfig): Record<string, unknown> {
  const sides =
    config.mode === 'initiator'
      ? {
          listen_plain: formatEndpoint(config.initiator.listen_plain),
          remote_ao: formatEndpoint(config.initiator.remote_ao),
          ...(config.initiator.source_ip === undefined ? {} : { source_ip: config.initiator.source_ip.address }),
        }
      : { listen_ao: formatEndpoint(config.terminator.listen_ao), forward_plain: formatEndpoint(config.terminator.forward_plain) };
  return {
    config: config.source,
    mode: config.mode,
    ...sides,
    policies: config.activePolicies.map((policy) => describePolicy(policy)),
  };
}

/** The check-config summary. */
export function describeConfig(loaded: LoadedConfig): string {
  const { config, warnings } = loaded;
  const lines = [`${config.source}: valid ${config.mode} config`];
  if (config.mode === 'initiator') {
    lines.push(`  listen_plain  ${formatEndpoint(config.initiator.listen_plain)}  (plain TCP from the local app)`);
    lines.push(`  remote_ao     ${formatEndpoint(config.initiator.remote_ao)}  (TCP-AO to the terminator)`);
    if (config.initiator.source_ip !== undefined) lines.push(`  source_ip     ${config.initiator.source_ip.address}`);
  } else {
    lines.push(`  listen_ao      ${formatEndpoint(config.terminator.listen_ao)}  (TCP-AO from initiators)`);
    lines.push(`  forward_plain  ${formatEndpoint(config.terminator.forward_plain)}  (plain TCP to the local app)`);
  }
  lines.push(`  policies (${config.activePolicies.length} of ${config.ao_policy.length} installed):`);
  for (const policy of config.ao_policy) {
    const used = config.activePolicies.includes(policy) ? '' : '  [not used on this side]';
    // The line describes the preferred key; keys whose maclen or options flag differ from it are named after it.
    const preferred = policy.keys.find((key) => key.role === 'preferred') ?? policy.keys[0];
    const maclen = preferred?.maclen ?? policy.maclen;
    const exclude = preferred?.exclude_tcp_options ?? policy.exclude_tcp_options;
    const extras = [
      exclude ? 'exclude_tcp_options' : undefined,
      policy.vrf_ifindex !== 0 ? `vrf_ifindex ${policy.vrf_ifindex}` : undefined,
      ...policy.keys
        .filter((key) => key.maclen !== maclen || key.exclude_tcp_options !== exclude)
        .map((key) => `key[${key.position}] maclen ${key.maclen}${key.exclude_tcp_options ? ' exclude_tcp_options' : ' options included'}`),
    ].filter((extra) => extra !== undefined);
    lines.push(
      `    ao_policy[${policy.index}] ${policy.name}: peer ${formatPrefix(policy.peer_ip)}` +
        `${policy.peer_port === 0 ? '' : ` port ${policy.peer_port}`}, send_id ${policy.send_id}, recv_id ${policy.recv_id}, ` +
        `${policy.mac_alg}, maclen ${maclen}, key ${policy.key.byteLength} bytes from ${formatKeySource(policy.key_source)}` +
        `${extras.length === 0 ? '' : `, ${extras.join(', ')}`}${used}`,
    );
  }
  for (const warning of warnings) lines.push(`  warning: ${warning.code}: ${warning.path}: ${warning.message}`);
  return `${lines.join('\n')}\n`;
}
