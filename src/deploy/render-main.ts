/**
 * render-config: renders a role's config template from the environment.
 *
 *   render-config --role initiator|terminator --template FILE --output FILE|-
 *
 * Exit 0 on success, 2 with one coded line on stderr when the command line,
 * the template or a variable is wrong.
 */
import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TcpAoError, isUserError } from '../errors';
import { type Env, ROLES, type Role, isRole, renderTemplate } from './render';

export const USAGE = `Usage: render-config --role ${ROLES.join('|')} --template FILE --output FILE|-`;

export interface RenderIo {
  readonly env: Env;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

interface Args {
  readonly role: string;
  readonly template: string;
  readonly output: string;
}

function parseArgs(argv: readonly string[]): Args {
  const values = new Map<string, string>();
  for (let index = 0; index < argv.length; index += 1) {
    const flag = argv[index] as string;
    if (flag === '-h' || flag === '--help') throw new TcpAoError('ERR_TCPAO_USAGE', USAGE, { detail: { help: true } });
    if (!['--role', '--template', '--output'].includes(flag)) {
      throw new TcpAoError('ERR_TCPAO_USAGE', `unknown argument ${JSON.stringify(flag)}; ${USAGE}`);
    }
    const value = argv[index + 1];
    if (value === undefined || value === '') throw new TcpAoError('ERR_TCPAO_USAGE', `${flag} needs a value; ${USAGE}`);
    values.set(flag, value);
    index += 1;
  }
  const role = values.get('--role');
  const template = values.get('--template');
  const output = values.get('--output');
  if (role === undefined || template === undefined || output === undefined) {
    throw new TcpAoError('ERR_TCPAO_USAGE', `--role, --template and --output are required; ${USAGE}`);
  }
  if (!isRole(role)) throw new TcpAoError('ERR_TCPAO_USAGE', `--role must be ${ROLES.join(' or ')}; ${USAGE}`);
  return { role, template, output };
}

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

export function renderConfigMain(argv: readonly string[], io: RenderIo): number {
  try {
    const args = parseArgs(argv);
    renderConfigFile(args.role as Role, args.template, args.output, io.env, io.stdout);
    return 0;
  } catch (err) {
    if (err instanceof TcpAoError && err.detail?.help === true) {
      io.stdout(`${USAGE}\n`);
      return 0;
    }
    if (isUserError(err)) {
      io.stderr(`render-config: ${err.code}: ${err.message}\n`);
      return 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.stderr(`render-config: ERR_TCPAO_INTERNAL: ${message}\n`);
    return 1;
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
