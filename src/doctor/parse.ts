/**
 * Parsers for the kernel's text interfaces the doctor reads: the kernel
 * release, the kernel build config, /proc/self/status and /proc/net/netstat.
 * Pure functions of their input text, so fixtures test them.
 */

export interface KernelVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/** "6.12.117-lab" -> {6, 12, 117}; undefined when the release does not start with a version. */
export function parseKernelVersion(release: string): KernelVersion | undefined {
  const match = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release.trim());
  if (match === null) return undefined;
  return {
    major: Number(match[1]),
    minor: Number(match[2]),
    patch: match[3] === undefined ? 0 : Number(match[3]),
  };
}

/** TCP-AO was merged in Linux 6.7. */
export const FIRST_TCP_AO_KERNEL: KernelVersion = { major: 6, minor: 7, patch: 0 };

export function kernelAtLeast(version: KernelVersion, floor: KernelVersion): boolean {
  if (version.major !== floor.major) return version.major > floor.major;
  if (version.minor !== floor.minor) return version.minor > floor.minor;
  return version.patch >= floor.patch;
}

/**
 * How a kernel config file sets one option: its value ("y", "m", a string),
 * "not set" for a `# CONFIG_X is not set` line, or "absent" when the file does
 * not mention it.
 */
export function kernelConfigValue(configText: string, option: string): string {
  for (const line of configText.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === `# ${option} is not set`) return 'not set';
    if (trimmed.startsWith(`${option}=`)) return trimmed.slice(option.length + 1);
  }
  return 'absent';
}

/** Capability bits the deployment cares about (include/uapi/linux/capability.h). */
export const CAPABILITY_BITS = {
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_SYS_ADMIN: 21,
} as const;

export type CapabilityName = keyof typeof CAPABILITY_BITS;

/** The effective capability mask from /proc/self/status text, or undefined when the line is missing. */
export function parseCapEff(statusText: string): bigint | undefined {
  const match = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(statusText);
  if (match === null) return undefined;
  return BigInt(`0x${match[1]}`);
}

export function hasCapability(mask: bigint, name: CapabilityName): boolean {
  return ((mask >> BigInt(CAPABILITY_BITS[name])) & 1n) === 1n;
}

/** The names from CAPABILITY_BITS that a mask holds, in bit order. */
export function namedCapabilities(mask: bigint): CapabilityName[] {
  return (Object.keys(CAPABILITY_BITS) as CapabilityName[]).filter((name) => hasCapability(mask, name));
}

/**
 * /proc/net/netstat as {section: {field: value}}. Each section is a header line
 * of field names followed by a line of values, both prefixed "Section:".
 */
export function parseNetstat(text: string): Map<string, Map<string, bigint>> {
  const sections = new Map<string, Map<string, bigint>>();
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  for (let index = 0; index + 1 < lines.length; index += 2) {
    const header = lines[index].trim().split(/\s+/);
    const values = lines[index + 1].trim().split(/\s+/);
    const section = header[0];
    if (!section.endsWith(':') || values[0] !== section) continue;
    const fields = new Map<string, bigint>();
    for (let column = 1; column < header.length && column < values.length; column += 1) {
      if (/^-?\d+$/.test(values[column])) fields.set(header[column], BigInt(values[column]));
    }
    sections.set(section.slice(0, -1), fields);
  }
  return sections;
}

export const TCP_AO_COUNTERS = [
  'TCPAOGood',
  'TCPAOBad',
  'TCPAOKeyNotFound',
  'TCPAORequired',
  'TCPAODroppedIcmps',
] as const;

export type TcpAoCounterName = (typeof TCP_AO_COUNTERS)[number];

/** The netns-wide TCP-AO counters from /proc/net/netstat text; undefined when the kernel exposes none. */
export function tcpAoCounters(netstatText: string): Partial<Record<TcpAoCounterName, bigint>> | undefined {
  const tcpExt = parseNetstat(netstatText).get('TcpExt');
  if (tcpExt === undefined) return undefined;
  const counters: Partial<Record<TcpAoCounterName, bigint>> = {};
  let found = false;
  for (const name of TCP_AO_COUNTERS) {
    const value = tcpExt.get(name);
    if (value !== undefined) {
      counters[name] = value;
      found = true;
    }
  }
  return found ? counters : undefined;
}

/** /proc/sys/net/ipv4/ip_unprivileged_port_start; undefined when unparsable. */
export function parsePortNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return undefined;
  return Number(trimmed);
}
