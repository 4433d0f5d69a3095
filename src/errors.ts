/**
 * The one registry of error codes. A code, once shipped, is never reused for
 * another meaning; add new codes at the end of their group.
 */
export const ErrorCodes = {
  // Kernel capability and native addon.
  ERR_TCPAO_UNSUPPORTED: 'the kernel lacks TCP-AO (CONFIG_TCP_AO)',
  ERR_TCPAO_ADDON_MISSING: 'the native addon was not built',
  ERR_TCPAO_SYSCALL: 'a TCP-AO socket call failed',
  ERR_TCPAO_KEY_READBACK: 'the kernel copy of a key differs from the key set',
  ERR_TCPAO_CONNECT_TIMEOUT: 'an AO connect did not complete in time',
  ERR_TCPAO_INVALID_ARGUMENT: 'an argument to a TCP-AO operation is invalid',
  ERR_TCPAO_NOT_AUTHENTICATED: 'an accepted connection is not protected by TCP-AO',

  // Configuration and CLI usage (exit status 2).
  ERR_TCPAO_USAGE: 'the command line is invalid',
  ERR_TCPAO_CONFIG_READ: 'the config file cannot be read',
  ERR_TCPAO_CONFIG_SYNTAX: 'the config file is not valid TOML',
  ERR_TCPAO_CONFIG_INVALID: 'the config does not match the schema',
  ERR_TCPAO_KEY_SOURCE: 'a key source cannot be resolved',
  ERR_TCPAO_MODE_MISMATCH: 'the --mode argument and the config section disagree',
  ERR_TCPAO_RENDER_MISSING_VAR: 'a variable the config template needs is not set',
  ERR_TCPAO_RENDER_INVALID_VALUE: 'a variable for the config template has an invalid value',
  ERR_TCPAO_RENDER_TEMPLATE: 'the config template cannot be read or is malformed',
  ERR_TCPAO_RENDER_WRITE: 'the rendered config cannot be written',

  // Offline bundle (scripts/offline-bundle). Verification problems exit 1; see docs/air-gap.md.
  ERR_TCPAO_BUNDLE_NOT_FOUND: 'the bundle directory does not exist or is not a directory',
  ERR_TCPAO_BUNDLE_OUTPUT_EXISTS: 'the output directory for a new bundle already exists and is not empty',
  ERR_TCPAO_BUNDLE_IMAGE_LIST: 'the pinned image list (deploy/images/images.json) is unreadable or invalid',
  ERR_TCPAO_BUNDLE_FILE_MISSING: 'a file the bundle lists is absent',
  ERR_TCPAO_BUNDLE_FILE_EXTRA: 'the bundle holds a file its lists do not name',
  ERR_TCPAO_BUNDLE_FILE_TYPE: 'a bundle entry is not a regular file',
  ERR_TCPAO_BUNDLE_CHECKSUM_MISMATCH: 'a file in the bundle differs from its SHA256SUMS entry',
  ERR_TCPAO_BUNDLE_SIZE_MISMATCH: 'a file in the bundle differs in size from its manifest entry',
  ERR_TCPAO_BUNDLE_LISTS_DISAGREE: 'manifest.json and SHA256SUMS disagree about a file',
  ERR_TCPAO_BUNDLE_SUMS_INVALID: 'SHA256SUMS is malformed',
  ERR_TCPAO_BUNDLE_MANIFEST_INVALID: 'manifest.json is malformed',
  ERR_TCPAO_BUNDLE_SIGNATURE_INVALID: 'the bundle signature does not verify',
  ERR_TCPAO_BUNDLE_SIGNATURE_UNCHECKED: 'a signature check was asked for but could not be done',
  ERR_TCPAO_BUNDLE_IMAGE_TOOL: 'a docker command failed',
  ERR_TCPAO_BUNDLE_IMAGE_MISSING: 'an image the manifest names is not in the local image store',
  ERR_TCPAO_BUNDLE_IMAGE_DIGEST: 'a local image has a different ID from the one in the manifest',
  ERR_TCPAO_BUNDLE_NPM: 'npm pack or npm sbom failed, or the tarball lacks its runtime dependencies',
  ERR_TCPAO_BUNDLE_COSIGN: 'cosign is missing or failed while signing',

  // Runtime.
  ERR_TCPAO_LISTEN: 'a listener cannot be opened',
  ERR_TCPAO_SHUTDOWN_TIMEOUT: 'shutdown did not finish before its deadline',
  ERR_TCPAO_INTERNAL: 'an unexpected internal error (a bug)',
  ERR_TCPAO_RELOAD_RESTART_NEEDED: 'a reload changes a setting that only a restart can change; nothing was applied',
  ERR_TCPAO_RELOAD_KEY_IN_USE: 'a reload changes the bytes of a key in use under the same ids; nothing was applied',
  ERR_TCPAO_RELOAD_TARGET: 'the process to reload cannot be found or signalled',
  ERR_TCPAO_METRICS_LISTEN: 'the metrics listener cannot be opened',
  ERR_TCPAO_PID_FILE: 'the pid file cannot be written',
  ERR_TCPAO_RELOAD_KEY_INSTALL: 'a reload could not change the keys of a socket; every change it had made was undone',
  ERR_TCPAO_RELOAD_ROLLBACK: 'undoing a failed reload failed; a socket holds keys of neither config generation',
  ERR_TCPAO_PORT_GUARD: "the container entrypoint cannot drop off-host TCP to the app's ports (needs CAP_NET_ADMIN); nothing was started",
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/**
 * Codes of config warnings: legal settings that are risky or will not
 * interoperate. A warning never stops the sidecar; check-config prints the
 * code on each warning line and doctor reports it as WARN. Like error codes,
 * a code once shipped keeps its meaning; add new ones at the end.
 */
export const WarningCodes = {
  WARN_TCPAO_PLAIN_LEG_NOT_LOOPBACK: 'the plain leg (listen_plain or forward_plain) is not on a loopback address',
  WARN_TCPAO_POLICY_UNUSED: 'an [[ao_policy]] does not apply to this side and is not installed',
  WARN_TCPAO_ROUTER_MAC_ALG: 'a key uses hmac-sha256, which is not an RFC 5926 algorithm and which routers do not offer',
  WARN_TCPAO_ROUTER_MACLEN: 'a key has a MAC length other than the 12 bytes (96 bits) routers use',
} as const;

export type WarningCode = keyof typeof WarningCodes;

export interface TcpAoErrorOptions {
  readonly cause?: unknown;
  readonly errno?: number;
  readonly syscall?: string;
  /** The system error name (ENOPROTOOPT, ECONNREFUSED, ...) when one caused this. */
  readonly sysCode?: string;
  /** Structured detail safe to log (never key material). */
  readonly detail?: Readonly<Record<string, unknown>>;
}

export class TcpAoError extends Error {
  readonly code: ErrorCode;
  readonly errno: number | undefined;
  readonly syscall: string | undefined;
  readonly sysCode: string | undefined;
  readonly detail: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: TcpAoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TcpAoError';
    this.code = code;
    this.errno = options.errno;
    this.syscall = options.syscall;
    this.sysCode = options.sysCode;
    this.detail = options.detail;
  }
}

/** Codes that mean the operator gave bad input: reported as one line, exit status 2. */
const USER_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ERR_TCPAO_USAGE',
  'ERR_TCPAO_CONFIG_READ',
  'ERR_TCPAO_CONFIG_SYNTAX',
  'ERR_TCPAO_CONFIG_INVALID',
  'ERR_TCPAO_KEY_SOURCE',
  'ERR_TCPAO_MODE_MISMATCH',
  'ERR_TCPAO_RENDER_MISSING_VAR',
  'ERR_TCPAO_RENDER_INVALID_VALUE',
  'ERR_TCPAO_RENDER_TEMPLATE',
  'ERR_TCPAO_RENDER_WRITE',
  'ERR_TCPAO_BUNDLE_NOT_FOUND',
  'ERR_TCPAO_BUNDLE_OUTPUT_EXISTS',
  'ERR_TCPAO_BUNDLE_IMAGE_LIST',
  'ERR_TCPAO_RELOAD_TARGET',
]);

export function isUserError(err: unknown): err is TcpAoError {
  return err instanceof TcpAoError && USER_ERROR_CODES.has(err.code);
}

/** The string `code` of any thrown value (ours, Node's ENOENT, ...), or undefined. */
export function errorCodeOf(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

export function hasCode(err: unknown, code: ErrorCode): boolean {
  return errorCodeOf(err) === code;
}
