/**
 * The command framework shared by tcpao-proxy, render-config and
 * offline-bundle: what a command declares, how its argv is parsed, its help
 * text and how an error becomes one line per problem and an exit status.
 *
 * Bad input is reported as "PROGRAM: CODE: what is wrong and what to do",
 * exit status 2, no stack trace. Option values and positional arguments are
 * never repeated back: one may be a key typed by mistake.
 *
 * This module needs only node:util and ../errors.js: the offline bundle ships
 * it beside its own files (bundle/prepare.ts copies it).
 */
import { parseArgs } from 'node:util';

import { isUserError, TcpAoError } from '../errors.js';
import type { Logger } from '../log.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  /** Told about the root logger once the sidecar has one, so fatal errors can be logged. */
  readonly onLogger?: (logger: Logger) => void;
}

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** Placeholder shown in help, e.g. FILE. */
  readonly valueName?: string;
  readonly description: string;
  readonly required?: boolean;
  readonly choices?: readonly string[];
}

export type OptionValues = Readonly<Record<string, string | boolean | undefined>>;

export interface CommandContext<Deps = unknown> {
  readonly options: OptionValues;
  readonly positionals: readonly string[];
  readonly io: CliIo;
  readonly deps: Deps;
}

/** What a command declares: enough to parse its argv and print its help. */
export interface CommandSpec {
  /** The subcommand word; '' for a program's only or default command. */
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Usage line(s) after "Usage: PROGRAM ". */
  readonly usage: string;
  /** Paragraphs shown by `<command> --help`. */
  readonly description: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Names of accepted positional arguments, in order; none when absent. */
  readonly positionals?: readonly string[];
  /** How usage errors name the command ("running the sidecar"); "PROGRAM NAME" when absent. */
  readonly subject?: string;
}

export interface CliCommand<Deps = unknown> extends CommandSpec {
  run(context: CommandContext<Deps>): Promise<number> | number;
}

/** The program a command line belongs to: its name and the shape of its error lines. */
export interface Program {
  readonly name: string;
  /** One error line without its newline; "NAME: CODE: text" when absent. */
  readonly errorLine?: (code: string, text: string) => string;
  /** The text for an error that is no TcpAoError (a bug); the error's message when absent. */
  readonly unexpectedText?: (message: string) => string;
  /** Said of an unknown option that looks like a key (--key, --psk, ...): where keys come from instead. */
  readonly keyAdvice?: string;
}

/** The keyAdvice of the programs whose configs name a key_source. */
export const KEY_ADVICE = 'keys are never taken from the command line: set key_source in the config';

export interface ParsedArgs {
  readonly options: OptionValues;
  readonly positionals: string[];
  readonly help: boolean;
}

/** Raised for bad command lines; reported like config problems. */
export function usageError(message: string): TcpAoError {
  return new TcpAoError('ERR_TCPAO_USAGE', message);
}

/** Several usage problems, printed one per line. */
export class UsageErrors extends TcpAoError {
  readonly lines: readonly string[];
  constructor(lines: readonly string[]) {
    super('ERR_TCPAO_USAGE', lines.join('; '));
    this.lines = Object.freeze([...lines]);
  }
}

const HELP_OPTION: OptionSpec = { type: 'boolean', short: 'h', description: 'show this help and exit' };

/**
 * An option name that may be repeated back to the user. Values and
 * positional arguments are never repeated: one may be a key typed by mistake.
 */
function echoOptionName(name: string): string {
  return /^[a-z][a-z0-9-]{0,31}$/.test(name) ? ` --${name}` : '';
}

function invocation(program: Program, command: CommandSpec): string {
  return command.name === '' ? program.name : `${program.name} ${command.name}`;
}

/** Parses argv for `command`; throws UsageErrors listing every problem. */
export function parseCommandArgs(program: Program, command: CommandSpec, argv: readonly string[]): ParsedArgs {
  const specs: Record<string, OptionSpec> = { ...command.options, help: HELP_OPTION };
  const parseOptions: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    parseOptions[name] = spec.short === undefined ? { type: spec.type } : { type: spec.type, short: spec.short };
  }
  const { tokens } = parseArgs({ args: [...argv], options: parseOptions, strict: false, allowPositionals: true, tokens: true });
  // A request for help wins over every other problem on the line.
  if (tokens.some((token) => token.kind === 'option' && token.name === 'help')) return { options: {}, positionals: [], help: true };
  const options: Record<string, string | boolean | undefined> = {};
  const positionals: string[] = [];
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'positional') {
      positionals.push(token.value);
      continue;
    }
    if (token.kind !== 'option') continue;
    const spec = Object.hasOwn(specs, token.name) ? specs[token.name] : undefined;
    if (spec === undefined) {
      const secretish = /key|secret|passw|psk/i.test(token.name);
      problems.push(
        secretish && program.keyAdvice !== undefined
          ? `unknown option${echoOptionName(token.name)}; ${program.keyAdvice}`
          : `unknown option${token.rawName.startsWith('--') ? echoOptionName(token.name) : ` ${token.rawName.slice(0, 2)}`}; ` +
            `run ${invocation(program, command)} --help`,
      );
      continue;
    }
    if (seen.has(token.name)) {
      problems.push(`--${token.name} is given more than once`);
      continue;
    }
    seen.add(token.name);
    if (spec.type === 'boolean') {
      if (token.value !== undefined) problems.push(`--${token.name} takes no value`);
      else options[token.name] = true;
      continue;
    }
    const value = token.value;
    if (value === undefined || value === '' || (!token.inlineValue && value.startsWith('-') && value.length > 1)) {
      problems.push(`--${token.name} needs a value${spec.valueName === undefined ? '' : ` (${spec.valueName})`}`);
      continue;
    }
    if (spec.choices !== undefined && !spec.choices.includes(value)) {
      problems.push(`--${token.name} must be ${spec.choices.join(' or ')}`);
      continue;
    }
    options[token.name] = value;
  }
  const allowed = command.positionals ?? [];
  if (positionals.length > allowed.length) {
    problems.push(
      allowed.length === 0
        ? `unexpected argument; ${command.subject ?? invocation(program, command)} takes options only`
        : `too many arguments; expected at most ${allowed.join(', ')}`,
    );
  }
  for (const [name, spec] of Object.entries(command.options)) {
    if (spec.required === true && options[name] === undefined && !problems.some((problem) => problem.startsWith(`--${name} `))) {
      problems.push(`--${name} is required${spec.valueName === undefined ? '' : ` (--${name} ${spec.valueName})`}`);
    }
  }
  if (problems.length > 0) throw new UsageErrors(problems);
  return { options, positionals, help: false };
}

function optionRows(options: Readonly<Record<string, OptionSpec>>): (readonly [string, string])[] {
  return Object.entries({ ...options, help: HELP_OPTION }).map(([name, spec]) => {
    const flag = `${spec.short === undefined ? '    ' : `-${spec.short}, `}--${name}${spec.valueName === undefined ? '' : ` ${spec.valueName}`}`;
    return [flag, `${spec.description}${spec.required === true ? ' (required)' : ''}`] as const;
  });
}

/** The column where option descriptions start, --help included. */
export function optionWidth(options: Readonly<Record<string, OptionSpec>>): number {
  return Math.max(...optionRows(options).map(([flag]) => flag.length)) + 2;
}

/** The option table of a help text, --help included. */
export function formatOptions(options: Readonly<Record<string, OptionSpec>>): string {
  const width = optionWidth(options);
  return optionRows(options)
    .map(([flag, text]) => `  ${flag.padEnd(width)}${text}`)
    .join('\n');
}

export function commandHelp(program: Program, command: CommandSpec): string {
  return `Usage: ${program.name} ${command.usage}\n\n${command.description}\n\nOptions:\n${formatOptions(command.options)}\n`;
}

/** Joins the lines of a message, so each problem stays one line. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** One error line of `program`, without its newline. */
export function errorLine(program: Program, code: string, text: string): string {
  return program.errorLine === undefined ? `${program.name}: ${code}: ${oneLine(text)}` : program.errorLine(code, oneLine(text));
}

/**
 * Writes an error as one line per problem and returns the exit status: 2 for
 * bad input, 1 otherwise. No stack is written; an unexpected error's stack
 * goes to the log at debug level only.
 */
export function reportError(program: Program, err: unknown, writeLine: (line: string) => void, log: Logger | undefined): number {
  if (err instanceof UsageErrors) {
    for (const line of err.lines) writeLine(errorLine(program, err.code, line));
    return EXIT_USAGE;
  }
  if (isUserError(err)) {
    writeLine(errorLine(program, err.code, err.message));
    return EXIT_USAGE;
  }
  if (err instanceof TcpAoError) {
    writeLine(errorLine(program, err.code, err.message));
    log?.error({ event: 'fatal', code: err.code, errno: err.errno, syscall: err.syscall, sysCode: err.sysCode }, oneLine(err.message));
    log?.debug({ err }, 'fatal error detail');
    return EXIT_FAILURE;
  }
  const message = err instanceof Error ? err.message : String(err);
  const text = program.unexpectedText === undefined ? message : program.unexpectedText(message);
  writeLine(errorLine(program, 'ERR_TCPAO_INTERNAL', text));
  log?.error({ event: 'internal_error' }, oneLine(`unexpected error: ${message}`));
  log?.debug({ err }, 'internal error detail');
  return EXIT_FAILURE;
}
