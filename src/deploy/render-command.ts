/**
 * `tcpao-proxy render-config`: the CLI face of the config renderer, the same
 * code as scripts/render-config (which the container entrypoints call).
 */
import path from 'node:path';
import type { CliCommand } from '../cli/command.js';
import type { Role } from './render.js';
import { renderConfigFile, ROLE_OPTION } from './render-main.js';

/** The templates shipped with the package (deploy/config, listed in package.json "files"). */
export function packagedTemplate(role: Role): string {
  return path.resolve(__dirname, '..', '..', '..', 'deploy', 'config', `${role}.toml.tmpl`);
}

export const renderConfigCommand: CliCommand = {
  name: 'render-config',
  summary: 'write a config from a role template and environment variables',
  usage: 'render-config --role initiator|terminator --output FILE|- [--template FILE]',
  description:
    'Fills the ${VAR} placeholders of a role template (default: the packaged deploy/config/ROLE.toml.tmpl)\n' +
    'from the environment: LISTEN_PLAIN and REMOTE_AO (initiator), LISTEN_AO and FORWARD_PLAIN (terminator),\n' +
    'PEER_IP, PEER_PORT and KEY_ID (default 1). The config names the key, never holds it: key_source is\n' +
    '"env:TCPAO_KEY", or "file:PATH" when TCPAO_KEY_FILE=PATH is set. A missing variable, or a value with\n' +
    'quotes, backslashes, control characters or a non-integer number, is refused (exit 2) naming the variable.\n' +
    'See docs/deployment-runbook.md.',
  options: {
    role: ROLE_OPTION,
    output: { type: 'string', short: 'o', valueName: 'FILE', required: true, description: 'where to write the config ("-" for stdout)' },
    template: { type: 'string', valueName: 'FILE', description: 'the template to fill (default: the packaged one for ROLE)' },
  },
  run(context) {
    const role = context.options['role'] as Role;
    const template = typeof context.options['template'] === 'string' ? context.options['template'] : packagedTemplate(role);
    renderConfigFile(role, template, context.options['output'] as string, context.io.env, context.io.stdout);
    return 0;
  },
};
