/**
 * Renders deploy/config/<role>.toml.tmpl into the sidecar's config.toml by
 * filling ${NAME} placeholders from the environment.
 *
 * The renderer reads only the variables its template names (plus
 * TCPAO_KEY_FILE), never TCPAO_KEY: the rendered file names where the key
 * lives, it never holds the key. A value that would change the TOML's
 * structure (quotes, backslashes, control characters, a non-integer in a bare
 * position) is refused rather than escaped, so what the operator set is what
 * the sidecar reads. Messages name the variable, never repeat its value.
 */
import TOML from '@iarna/toml';
import { parseEndpoint, parsePeerPrefix } from '../config/address.js';
import { TcpAoError } from '../errors.js';

export const ROLES = ['initiator', 'terminator'] as const;
export type Role = (typeof ROLES)[number];

export type Env = Readonly<Record<string, string | undefined>>;

/** The key_source line exactly as both templates carry it. */
export const ENV_KEY_SOURCE_LINE = 'key_source = "env:TCPAO_KEY"';
/** Set to an absolute path to read the key from a mounted file instead of TCPAO_KEY. */
export const KEY_FILE_VAR = 'TCPAO_KEY_FILE';

const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const KEY_LOOKING_NAME = /(^|_)(KEY|SECRET|PASSWORD|TOKEN)(_|$)/;
const MAX_VALUE_LENGTH = 1_024;

type Rule =
  | { readonly kind: 'endpoint'; readonly allowUnspecified: boolean }
  | { readonly kind: 'peer' }
  | { readonly kind: 'integer'; readonly min: number; readonly max: number }
  | { readonly kind: 'text' };

interface VariableSpec {
  readonly rule: Rule;
  /** What to set, shown when the variable is missing or wrong. */
  readonly hint: string;
}

const VARIABLES: Readonly<Record<string, VariableSpec>> = {
  LISTEN_PLAIN: {
    rule: { kind: 'endpoint', allowUnspecified: true },
    hint: 'the plain local listener the app connects to, e.g. LISTEN_PLAIN=127.0.0.1:5000',
  },
  REMOTE_AO: {
    rule: { kind: 'endpoint', allowUnspecified: false },
    hint: "the terminator's wire address, e.g. REMOTE_AO=10.10.10.2:1790",
  },
  LISTEN_AO: {
    rule: { kind: 'endpoint', allowUnspecified: true },
    hint: 'the AO wire listener, e.g. LISTEN_AO=0.0.0.0:1790',
  },
  FORWARD_PLAIN: {
    rule: { kind: 'endpoint', allowUnspecified: false },
    hint: "the local app's plain listener, e.g. FORWARD_PLAIN=127.0.0.1:11019",
  },
  PEER_IP: {
    rule: { kind: 'peer' },
    hint: "the other sidecar's wire IP address (or prefix), e.g. PEER_IP=10.10.10.1",
  },
  PEER_PORT: {
    rule: { kind: 'integer', min: 0, max: 65_535 },
    hint: "the other sidecar's port, an integer from 0 to 65535 (0 means any)",
  },
  KEY_ID: {
    rule: { kind: 'integer', min: 0, max: 255 },
    hint: 'the TCP-AO key id both sides use, an integer from 0 to 255 (default 1)',
  },
};

/**
 * Defaults per role. The initiator's peer is the address it dials; the
 * terminator's peer dials from an ephemeral port, hence PEER_PORT 0 (any).
 */
function roleDefaults(role: Role, env: Env): Record<string, string> {
  const common = { KEY_ID: '1' };
  if (role === 'terminator') {
    return { ...common, LISTEN_AO: '0.0.0.0:1790', FORWARD_PLAIN: '127.0.0.1:11019', PEER_PORT: '0' };
  }
  const defaults: Record<string, string> = { ...common, LISTEN_PLAIN: '127.0.0.1:5000' };
  const remote = nonEmpty(env.REMOTE_AO);
  if (remote !== undefined) {
    const parsed = parseEndpoint(remote, { allowUnspecified: false });
    if (parsed.ok) {
      defaults.PEER_IP = parsed.value.host;
      defaults.PEER_PORT = String(parsed.value.port);
    }
  }
  return defaults;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function refuse(code: 'ERR_TCPAO_RENDER_MISSING_VAR' | 'ERR_TCPAO_RENDER_INVALID_VALUE', name: string, message: string): never {
  throw new TcpAoError(code, message, { detail: { variable: name } });
}

export interface Placeholder {
  readonly name: string;
  /** Inside a double-quoted TOML string, or a bare value (then it must be an integer). */
  readonly context: 'string' | 'bare';
}

/** The placeholders of a template in order of first appearance. */
export function placeholders(template: string): Placeholder[] {
  const found = new Map<string, Placeholder>();
  for (const line of template.split('\n')) {
    for (const match of line.matchAll(PLACEHOLDER)) {
      const name = match[1] as string;
      const before = line.slice(0, match.index);
      const quotes = (before.match(/"/g) ?? []).length;
      const context = quotes % 2 === 1 ? 'string' : 'bare';
      const seen = found.get(name);
      if (seen !== undefined && seen.context !== context) {
        throw new TcpAoError('ERR_TCPAO_RENDER_TEMPLATE', `the template uses \${${name}} both inside and outside quotes; fix the template`);
      }
      found.set(name, { name, context });
    }
  }
  return [...found.values()];
}

function checkValue(name: string, value: string, placeholder: Placeholder): void {
  const spec = VARIABLES[name];
  const hint = spec === undefined ? '' : `; set ${spec.hint}`;
  if (value.length > MAX_VALUE_LENGTH) {
    refuse('ERR_TCPAO_RENDER_INVALID_VALUE', name, `${name} is longer than ${MAX_VALUE_LENGTH} characters${hint}`);
  }
  if (CONTROL_CHARS.test(value)) {
    refuse('ERR_TCPAO_RENDER_INVALID_VALUE', name, `${name} contains a newline or another control character, which would break the TOML${hint}`);
  }
  if (value.includes('"') || value.includes('\\')) {
    refuse('ERR_TCPAO_RENDER_INVALID_VALUE', name, `${name} contains a quote or a backslash, which would break the TOML${hint}`);
  }
  const rule: Rule = spec?.rule ?? (placeholder.context === 'bare' ? { kind: 'integer', min: 0, max: 2_147_483_647 } : { kind: 'text' });
  if ((rule.kind === 'integer') !== (placeholder.context === 'bare')) {
    throw new TcpAoError('ERR_TCPAO_RENDER_TEMPLATE', `the template writes \${${name}} ${placeholder.context === 'bare' ? 'without' : 'inside'} quotes, which does not fit its type; fix the template`);
  }
  switch (rule.kind) {
    case 'integer': {
      if (!/^\d{1,10}$/.test(value)) {
        refuse('ERR_TCPAO_RENDER_INVALID_VALUE', name, `${name} is not a whole number${hint}`);
      }
      const number = Number(value);
      if (number < rule.min || number > rule.max) {
        refuse('ERR_TCPAO_RENDER_INVALID_VALUE', name, `${name} is out of range ${rule.min}-${rule.max}${hint}`);
      }
      return;
    }
    case 'endpoint': {
      const parsed = parseEndpoint(value, { allowUnspecified: rule.allowUnspecified });
      if (!parsed.ok) refuse('ERR_TCPAO_RENDER_INVALID_VALUE', name, `${name} is not a valid endpoint: ${parsed.message}`);
      return;
    }
    case 'peer': {
      const parsed = parsePeerPrefix(value);
      if (!parsed.ok) refuse('ERR_TCPAO_RENDER_INVALID_VALUE', name, `${name} is not a valid peer address: ${parsed.message}`);
      return;
    }
    case 'text':
      return;
  }
}

/** The key_source value to write: the env default, or file:PATH when TCPAO_KEY_FILE is set. */
function keySourceLine(env: Env): string {
  const keyFile = nonEmpty(env[KEY_FILE_VAR]);
  if (keyFile === undefined) return ENV_KEY_SOURCE_LINE;
  if (CONTROL_CHARS.test(keyFile) || keyFile.includes('"') || keyFile.includes('\\')) {
    refuse('ERR_TCPAO_RENDER_INVALID_VALUE', KEY_FILE_VAR, `${KEY_FILE_VAR} contains a quote, a backslash or a control character; mount the key file at a plain path such as /run/secrets/tcpao_key`);
  }
  if (!keyFile.startsWith('/')) {
    refuse('ERR_TCPAO_RENDER_INVALID_VALUE', KEY_FILE_VAR, `${KEY_FILE_VAR} must be an absolute path, e.g. /run/secrets/tcpao_key`);
  }
  return `key_source = "file:${keyFile}"`;
}

/**
 * Fills the template for `role` from `env`. Throws a TcpAoError
 * (ERR_TCPAO_RENDER_*) naming the first variable that is missing or invalid.
 */
export function renderTemplate(template: string, env: Env, role: Role): string {
  const found = placeholders(template);
  for (const { name } of found) {
    if (name !== 'KEY_ID' && KEY_LOOKING_NAME.test(name)) {
      throw new TcpAoError('ERR_TCPAO_RENDER_TEMPLATE', `the template has \${${name}}, which would write key material into the config; keys are referenced by key_source only`);
    }
  }
  if (!template.includes(ENV_KEY_SOURCE_LINE)) {
    throw new TcpAoError('ERR_TCPAO_RENDER_TEMPLATE', `the template lacks the line ${ENV_KEY_SOURCE_LINE}; use deploy/config/${role}.toml.tmpl`);
  }
  const defaults = roleDefaults(role, env);
  const values = new Map<string, string>();
  for (const placeholder of found) {
    const { name } = placeholder;
    const value = nonEmpty(env[name]) ?? defaults[name];
    if (value === undefined) {
      const spec = VARIABLES[name];
      refuse('ERR_TCPAO_RENDER_MISSING_VAR', name, `${name} is not set; ${spec === undefined ? 'export it' : `set ${spec.hint}`}`);
    }
    checkValue(name, value, placeholder);
    values.set(name, value);
  }
  const keySource = keySourceLine(env);
  const rendered = template
    .replace(PLACEHOLDER, (_whole, name: string) => values.get(name) as string)
    .split(ENV_KEY_SOURCE_LINE)
    .join(keySource);
  try {
    TOML.parse(rendered);
  } catch (cause) {
    throw new TcpAoError('ERR_TCPAO_RENDER_TEMPLATE', 'the rendered config is not valid TOML; fix the template', { cause });
  }
  return rendered;
}

export function isRole(text: string): text is Role {
  return (ROLES as readonly string[]).includes(text);
}
