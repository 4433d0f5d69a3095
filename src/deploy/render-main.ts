/**
 * render-config: renders a role's config template from the environment.
 *
 *   render-config --role initiator|terminator --template FILE --output FILE|-
 *
 * Exit 0 on success, 2 with one coded line on stderr per problem when the
 * command line, the template or a variable is wrong. The command line is
 * parsed and errors are reported by the shared framework (cli/command.ts).
 */
import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { commandHelp, EXIT_OK, KEY_ADVICE, parseCommandArgs, reportError, type CommandSpec, type OptionSpec, type Program } from '../cli/command.js';
import { TcpAoError } from '../errors.js';
import { type Env, ROLES, type Role, renderTemplate } from './render.js';

export interface RenderIo {
  readonly env: Env;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const RENDER_CONFIG: Program = { name: 'render-config', keyAdvice: KEY_ADVICE };

export const ROLE_OPTION: OptionSpec = { type: 'string', valueName: 'ROLE', required: true, choices: ROLES, description: 'initiator or terminator' };

/** The command scripts/render-config runs; `tcpao-proxy render-config` is render-command.ts. */
const renderConfigScript: CommandSpec = {
  name: '',
  summary: 'write a config from a role template and environment variables',
  usage: `--role ${ROLES.join('|')} --template FILE --output FILE|-`,
  description:
    'Fills the ${VAR} placeholders of the template from the environment and writes the config, through a\n' +
    'temporary file and a rename, to FILE ("-" for stdout). The config names the key, never holds it.\n' +
    'Exit status 0 when written, 2 with one coded line when the command line, the template or a variable\n' +
    'is wrong. See docs/deployment-runbook.md.',
  options: {
    role: ROLE_OPTION,
    template: { type: 'string', valueName: 'FILE', required: true, description: 'the template to fill' },
    output: { type: 'string', valueName: 'FILE', required: true, description: 'where to write the config ("-" for stdout)' },
  },
};

/** Writes beside the target then renames, so a reader never sees half a config. */
function writeAtomically(path: string, text: string): void {
  const temporary = join(dirname(path), `.${process.pid}.render-config.tmp`);
  try {
    writeFileSync(temporary, text, { mode: 0o644 });
    chmodSync(temporary, 0o644);
    renameSync(temporary, path);
  } catch (cause) {
    rmSync(temporary, { force: true });
    const code = (cause as NodeJS.ErrnoException).code ?? 'an error';
    throw new TcpAoError('ERR_TCPAO_RENDER_WRITE', `cannot write ${path} (${code}); check that its directory exists and is writable`, { cause });
  }
}

/** Reads the template, renders it from `env` and writes it (or prints it for "-"). Throws TcpAoError. */
export function renderConfigFile(role: Role, templatePath: string, output: string, env: Env, stdout: (text: string) => void): void {
  let template: string;
  try {
    template = readFileSync(templatePath, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'an error';
    throw new TcpAoError('ERR_TCPAO_RENDER_TEMPLATE', `cannot read template ${templatePath} (${code}); pass the role's .toml.tmpl`, { cause });
  }
  const rendered = renderTemplate(template, env, role);
  if (output === '-') stdout(rendered);
  else writeAtomically(output, rendered);
}

/** Runs scripts/render-config and returns its exit status; never throws. */
export function renderConfigMain(argv: readonly string[], io: RenderIo): number {
  try {
    const parsed = parseCommandArgs(RENDER_CONFIG, renderConfigScript, argv);
    if (parsed.help) {
      io.stdout(commandHelp(RENDER_CONFIG, renderConfigScript));
      return EXIT_OK;
    }
    const { role, template, output } = parsed.options;
    renderConfigFile(role as Role, template as string, output as string, io.env, io.stdout);
    return EXIT_OK;
  } catch (err) {
    return reportError(RENDER_CONFIG, err, (line) => io.stderr(`${line}\n`), undefined);
  }
}

export function main(argv: readonly string[]): void {
  process.exitCode = renderConfigMain(argv, {
    env: process.env,
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
}

if (require.main === module) main(process.argv.slice(2));
