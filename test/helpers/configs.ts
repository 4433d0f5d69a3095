/** Sidecar configs for end-to-end suites; keys always come from the environment. */

export interface PolicyOptions {
  readonly name?: string;
  readonly peer: string;
  readonly keyid?: number;
  readonly sendId?: number;
  readonly recvId?: number;
  readonly macAlg?: 'hmac-sha1' | 'hmac-sha256' | 'aes-128-cmac';
  readonly keyEnv?: string;
}

export interface GlobalOptions {
  readonly idleTimeoutSecs?: number;
  readonly connectTimeoutSecs?: number;
  readonly maxConnections?: number;
  readonly shutdownTimeoutSecs?: number;
}

function globalSection(options: GlobalOptions): string {
  return [
    '[global]',
    'log_format = "json"',
    'log_level = "debug"',
    `idle_timeout_secs = ${options.idleTimeoutSecs ?? 120}`,
    `connect_timeout_secs = ${options.connectTimeoutSecs ?? 3}`,
    `max_connections = ${options.maxConnections ?? 1024}`,
    `shutdown_timeout_secs = ${options.shutdownTimeoutSecs ?? 5}`,
    '',
  ].join('\n');
}

function policySection(policy: PolicyOptions, wirePort: number): string {
  const ids =
    policy.sendId === undefined
      ? `keyid = ${policy.keyid ?? 1}`
      : `keyid = ${policy.keyid ?? policy.sendId}\nsend_id = ${policy.sendId}\nrecv_id = ${policy.recvId ?? policy.sendId}`;
  return [
    '[[ao_policy]]',
    `name = "${policy.name ?? 'bmp-wire'}"`,
    `peer_ip = "${policy.peer}"`,
    `peer_port = ${wirePort}`,
    ids,
    `mac_alg = "${policy.macAlg ?? 'hmac-sha256'}"`,
    `key_source = "env:${policy.keyEnv ?? 'TCPAO_KEY'}"`,
    '',
  ].join('\n');
}

const bracket = (host: string) => (host.includes(':') ? `[${host}]` : host);

export function initiatorToml(options: {
  readonly listenPort: number;
  readonly remoteHost: string;
  readonly wirePort: number;
  readonly policies: readonly PolicyOptions[];
  readonly global?: GlobalOptions;
}): string {
  return [
    globalSection(options.global ?? {}),
    '[initiator]',
    `listen_plain = "127.0.0.1:${options.listenPort}"`,
    `remote_ao = "${bracket(options.remoteHost)}:${options.wirePort}"`,
    '',
    ...options.policies.map((policy) => policySection(policy, options.wirePort)),
  ].join('\n');
}

export function terminatorToml(options: {
  readonly listenHost: string;
  readonly wirePort: number;
  readonly forwardPort: number;
  readonly policies: readonly PolicyOptions[];
  readonly global?: GlobalOptions;
}): string {
  return [
    globalSection(options.global ?? {}),
    '[terminator]',
    `listen_ao = "${bracket(options.listenHost)}:${options.wirePort}"`,
    `forward_plain = "127.0.0.1:${options.forwardPort}"`,
    '',
    ...options.policies.map((policy) => policySection(policy, options.wirePort)),
  ].join('\n');
}
