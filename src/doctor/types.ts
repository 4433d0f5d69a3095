/**
 * Shapes shared by the doctor's checks, its report and its injected
 * dependencies. The doctor itself is a pure function of these dependencies, so
 * unit tests drive every branch with fakes and the CLI passes the real ones.
 */
import type { NetworkInterfaceInfo } from 'node:os';
import type { AoKeySpec, ProbeResult } from '../native/index.js';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  /** Stable identifier, e.g. "ao.probe" or "mac.hmac-sha256"; automation keys on it. */
  readonly id: string;
  readonly title: string;
  readonly status: CheckStatus;
  /** One line: what was found. For a skip, why the check did not run. */
  readonly finding: string;
  /** What to do; present whenever status is not pass. */
  readonly remedy?: string;
  /** Structured facts behind the finding (never key material). */
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface HostFacts {
  readonly hostname: string;
  readonly kernel: string;
  readonly arch: string;
  readonly node: string;
  readonly uid: number;
  /** ISO 8601 time the report was made. */
  readonly generatedAt: string;
  /** The --config path as given, or null. */
  readonly config: string | null;
}

export interface DoctorSummary {
  readonly pass: number;
  readonly warn: number;
  readonly fail: number;
  readonly skip: number;
}

export const REPORT_SCHEMA = 'tcpao-proxy.doctor/v1';

export interface DoctorReport {
  readonly schema: typeof REPORT_SCHEMA;
  readonly host: HostFacts;
  readonly checks: readonly CheckResult[];
  readonly summary: DoctorSummary;
  /** True when no check failed. */
  readonly ok: boolean;
}

/** The part of the addon the doctor uses; the real TcpAoBinding satisfies it. */
export interface DoctorBinding {
  probeTcpAo(): ProbeResult;
  openScratchSocket(family: 4 | 6): number;
  addKey(fd: number, key: AoKeySpec): void;
  closeFd(fd: number): void;
}

/** An error from a failed system call, as Node reports it. */
export interface SystemErrorLike {
  readonly code?: string;
  readonly errno?: number;
  readonly message?: string;
}

export interface DoctorDeps {
  /** Loads the addon; may throw (addon not built). Called at most once. */
  readonly loadBinding: () => DoctorBinding;
  /** Reads a whole file; rejects with a Node system error (code ENOENT, EACCES, ...). */
  readonly readFile: (path: string) => Promise<Buffer>;
  /** Where env: key sources are looked up. */
  readonly env: NodeJS.ProcessEnv;
  readonly hostname: () => string;
  /** The running kernel release, as `uname -r` prints it. */
  readonly kernelRelease: () => string;
  readonly arch: string;
  readonly nodeVersion: string;
  readonly uid: () => number;
  readonly networkInterfaces: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  readonly now: () => Date;
  readonly randomBytes: (size: number) => Buffer;
  /** Binds a plain TCP listener on host:port and closes it again; rejects with the bind error. */
  readonly tryBind: (host: string, port: number) => Promise<void>;
  /** Opens a plain TCP connection and closes it; rejects with the connect error or ETIMEDOUT. */
  readonly tryConnect: (host: string, port: number, timeoutMs: number) => Promise<void>;
}
