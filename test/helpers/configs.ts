/**
 * Sidecar config text for every suite: the sections each test's builder is made
 * of (one [[ao_policy]] writer, the two side sections), and the end-to-end
 * builders, whose keys always come from the environment.
 */

type MacAlg = 'hmac-sha1' | 'hmac-sha256' | 'aes-128-cmac';

/** One [[ao_policy.key]] table of a policy with several keys. */
export interface KeyToml {
  readonly sendId: number;
  readonly recvId: number;
  readonly role: string;
  /** A key source such as "env:TCPAO_KEY" or "file:new.key". */
  readonly source: string;
  readonly macAlg?: MacAlg;
}

/** An [[ao_policy]] table: the single-key form, or `keys` as [[ao_policy.key]] tables. */
export interface PolicyToml {
  readonly name?: string;
  readonly peer?: string;
  readonly peerPort?: number;
  readonly keyid?: number;
  readonly sendId?: number;
  readonly recvId?: number;
  readonly macAlg?: string;
  readonly keySource?: string;
  readonly keys?: readonly KeyToml[];
}

export function policyToml(policy: PolicyToml): string {
  const head = [
    '[[ao_policy]]',
    `name = "${policy.name ?? 'bmp-wire'}"`,
    `peer_ip = "${policy.peer ?? '127.0.0.1'}"`,
    ...(policy.peerPort === undefined ? [] : [`peer_port = ${policy.peerPort}`]),
  ];
  if (policy.keys !== undefined) {
    const tables = policy.keys.flatMap((key) => [
      '[[ao_policy.key]]',
      `send_id = ${key.sendId}`,
      `recv_id = ${key.recvId}`,
      `mac_alg = "${key.macAlg ?? 'hmac-sha256'}"`,
      `key_source = "${key.source}"`,
      `role = "${key.role}"`,
      '',
    ]);
    return [...head, '', ...tables].join('\n');
  }
  const ids =
    policy.sendId === undefined
      ? [`keyid = ${policy.keyid ?? 1}`]
      : [`keyid = ${policy.keyid ?? policy.sendId}`, `send_id = ${policy.sendId}`, `recv_id = ${policy.recvId ?? policy.sendId}`];
  return [...head, ...ids, `mac_alg = "${policy.macAlg ?? 'hmac-sha256'}"`, `key_source = "${policy.keySource ?? 'env:TCPAO_KEY'}"`, ''].join('\n');
}

/** host:port with an IPv6 host in brackets. */
export function endpoint(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function initiatorSection(listenPlain: string, remoteAo: string, sourceIp?: string): string {
  return [
    '[initiator]',
    `listen_plain = "${listenPlain}"`,
    `remote_ao = "${remoteAo}"`,
    ...(sourceIp === undefined ? [] : [`source_ip = "${sourceIp}"`]),
    '',
  ].join('\n');
}

export function terminatorSection(listenAo: string, forwardPlain: string): string {
  return ['[terminator]', `listen_ao = "${listenAo}"`, `forward_plain = "${forwardPlain}"`, ''].join('\n');
}

export interface PolicyOptions {
  readonly name?: string;
  readonly peer: string;
  readonly keyid?: number;
  readonly sendId?: number;
  readonly recvId?: number;
  readonly macAlg?: MacAlg;
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
  return policyToml({ ...policy, peerPort: wirePort, keySource: `env:${policy.keyEnv ?? 'TCPAO_KEY'}` });
}

export function initiatorToml(options: {
  readonly listenPort: number;
  readonly remoteHost: string;
  readonly wirePort: number;
  readonly policies: readonly PolicyOptions[];
  readonly global?: GlobalOptions;
}): string {
  return [
    globalSection(options.global ?? {}),
    initiatorSection(`127.0.0.1:${options.listenPort}`, endpoint(options.remoteHost, options.wirePort)),
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
    terminatorSection(endpoint(options.listenHost, options.wirePort), `127.0.0.1:${options.forwardPort}`),
    ...options.policies.map((policy) => policySection(policy, options.wirePort)),
  ].join('\n');
}
