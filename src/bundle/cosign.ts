import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { TcpAoError } from '../errors.js';

/**
 * What we can say about the bundle signature. Only 'verified' means a
 * signature was checked; every other state is reported as such, never as
 * signed.
 */
export type SignatureStatus =
  | { readonly state: 'verified'; readonly detail: string }
  | { readonly state: 'none'; readonly detail: string }
  | { readonly state: 'unchecked'; readonly detail: string }
  | { readonly state: 'invalid'; readonly detail: string };

export interface Cosign {
  /** The cosign executable, or null when it is not installed. */
  locate(): string | null;
  signBlob(key: string, blobPath: string, signaturePath: string): Promise<void>;
  /** Resolves true when the signature verifies, false when cosign rejects it. */
  verifyBlob(publicKey: string, blobPath: string, signaturePath: string): Promise<{ ok: boolean; output: string }>;
}

function findExecutable(name: string, pathVar: string | undefined): string | null {
  if (isAbsolute(name)) return isExecutableFile(name) ? name : null;
  for (const dir of (pathVar ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * cosign 2.x run as a child process with argument arrays. The key password,
 * when there is one, reaches cosign through COSIGN_PASSWORD in the
 * environment, never through argv. Transparency-log upload is off: the
 * bundle is checked at sites that cannot reach a public log.
 */
export class CosignCli implements Cosign {
  constructor(
    private readonly executable: string = 'cosign',
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  locate(): string | null {
    return findExecutable(this.executable, this.env.PATH);
  }

  private run(args: readonly string[]): Promise<{ code: number; output: string }> {
    const path = this.locate();
    if (path === null) {
      return Promise.reject(new TcpAoError('ERR_TCPAO_BUNDLE_COSIGN', `${this.executable} is not on PATH`));
    }
    return new Promise((resolve) => {
      execFile(path, [...args], { env: this.env, encoding: 'utf8', maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`.trim();
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 127;
        resolve({ code, output });
      });
    });
  }

  async signBlob(key: string, blobPath: string, signaturePath: string): Promise<void> {
    const { code, output } = await this.run(['sign-blob', '--yes', '--key', key, '--tlog-upload=false', '--output-signature', signaturePath, blobPath]);
    if (code !== 0) {
      const reason = output.split('\n').pop() ?? '';
      throw new TcpAoError('ERR_TCPAO_BUNDLE_COSIGN', `cosign sign-blob failed (exit ${code}): ${reason}`);
    }
  }

  async verifyBlob(publicKey: string, blobPath: string, signaturePath: string): Promise<{ ok: boolean; output: string }> {
    const { code, output } = await this.run(['verify-blob', '--key', publicKey, '--signature', signaturePath, '--insecure-ignore-tlog=true', blobPath]);
    return { ok: code === 0, output };
  }
}
