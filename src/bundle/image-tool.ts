import { execFile } from 'node:child_process';
import { TcpAoError } from '../errors.js';

/** What the local image store knows about one image. */
export interface LocalImage {
  /** Image ID: sha256 of the image config, unchanged by docker save / docker load. */
  readonly id: string;
  readonly repoDigests: readonly string[];
}

/**
 * Every container-engine step of the offline bundle goes through this one
 * interface, so the bundle logic runs in tests (with a fake) on hosts with no
 * Docker engine. The real implementation is DockerCli below.
 */
export interface ImageTool {
  pull(ref: string): Promise<void>;
  save(ref: string, path: string): Promise<void>;
  /** Returns what the engine reports as loaded: references, or image IDs for untagged images. */
  load(path: string): Promise<string[]>;
  /** null when the image is not in the local store. */
  inspect(ref: string): Promise<LocalImage | null>;
  tag(source: string, target: string): Promise<void>;
  /** Returns the registry manifest digest when the engine reports one. */
  push(ref: string): Promise<string | null>;
}

/** Parse `docker load` output ("Loaded image: REF" / "Loaded image ID: sha256:..."). */
export function parseLoadOutput(stdout: string): string[] {
  const loaded: string[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^Loaded image(?: ID)?: (\S+)\s*$/.exec(line.trim());
    if (match !== null) loaded.push(match[1] as string);
  }
  return loaded;
}

/** Parse the digest from `docker push` output ("TAG: digest: sha256:... size: N"). */
export function parsePushDigest(stdout: string): string | null {
  const match = /digest: (sha256:[0-9a-f]{64})/.exec(stdout);
  return match === null ? null : (match[1] as string);
}

interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

interface ExecFailure extends Error {
  code?: string | number;
  stderr?: string;
}

function firstLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '';
}

/**
 * The docker CLI, run as a child process with an argument array (never through
 * a shell). The environment picks the engine (DOCKER_HOST), so one process can
 * drive two engines, as the connected and the disconnected side.
 */
export class DockerCli implements ImageTool {
  constructor(
    private readonly dockerPath: string = 'docker',
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  private run(args: readonly string[]): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      execFile(this.dockerPath, [...args], { env: this.env, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err === null) {
          resolve({ stdout, stderr });
          return;
        }
        const failure = err as ExecFailure;
        const command = `docker ${args[0] ?? ''}${args[1] !== undefined && !args[1].startsWith('-') ? ` ${args[1]}` : ''}`;
        const reason =
          failure.code === 'ENOENT'
            ? `${this.dockerPath} is not on PATH; install the Docker CLI or run this step on a host that has it`
            : firstLine(stderr) || firstLine(failure.message);
        reject(
          new TcpAoError('ERR_TCPAO_BUNDLE_IMAGE_TOOL', `${command} failed: ${reason}`, {
            cause: err,
            detail: { args: [...args], stderr: stderr.slice(0, 2_000) },
          }),
        );
      });
    });
  }

  async pull(ref: string): Promise<void> {
    await this.run(['pull', '--quiet', ref]);
  }

  async save(ref: string, path: string): Promise<void> {
    await this.run(['save', '--output', path, ref]);
  }

  async load(path: string): Promise<string[]> {
    const { stdout } = await this.run(['load', '--input', path]);
    return parseLoadOutput(stdout);
  }

  async inspect(ref: string): Promise<LocalImage | null> {
    let stdout: string;
    try {
      ({ stdout } = await this.run(['image', 'inspect', '--format', '{{json .}}', ref]));
    } catch (err) {
      const stderr = String((err as TcpAoError).detail?.stderr ?? '');
      if (/no such image/i.test(stderr)) return null;
      throw err;
    }
    const parsed = JSON.parse(stdout) as { Id?: unknown; RepoDigests?: unknown };
    if (typeof parsed.Id !== 'string') {
      throw new TcpAoError('ERR_TCPAO_BUNDLE_IMAGE_TOOL', `docker image inspect ${ref}: the output has no image Id`);
    }
    const repoDigests = Array.isArray(parsed.RepoDigests) ? parsed.RepoDigests.filter((d): d is string => typeof d === 'string') : [];
    return { id: parsed.Id, repoDigests };
  }

  async tag(source: string, target: string): Promise<void> {
    await this.run(['tag', source, target]);
  }

  async push(ref: string): Promise<string | null> {
    const { stdout } = await this.run(['push', ref]);
    return parsePushDigest(stdout);
  }
}
