/**
 * The project's own Docker engine (scripts/docker-engine) as the image suites
 * use it: Debian's client with DOCKER_HOST pointing at that engine, container
 * logs read back as JSON lines, and polling waits with a stated limit.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { aoRequired, aoSupport } from './ao.js';
import { parseAoCounters, REPO, type JsonLine } from './lab.js';
import { pollUntil } from './wait.js';

const ENGINE_POLL_MS = 500;

export const DOCKER_ENGINE = join(REPO, 'scripts', 'docker-engine');
/** Debian's client, which matches the engine; a newer one may come first on PATH. */
export const DOCKER_CLIENT = '/usr/bin/docker';

export interface Engine {
  readonly env: NodeJS.ProcessEnv;
  /** Runs the client; throws with its stderr unless `allowFailure`. */
  docker(args: readonly string[], options?: { allowFailure?: boolean; input?: string; timeoutMs?: number }): SpawnSyncReturns<string>;
}

/** Starts the project's engine (a no-op when it runs) and returns a client bound to it. */
export function startEngine(): Engine {
  const start = spawnSync(DOCKER_ENGINE, ['start'], { encoding: 'utf8' });
  if (start.status !== 0) throw new Error(`scripts/docker-engine start failed: ${start.stderr.trim()}`);
  const printed = spawnSync(DOCKER_ENGINE, ['env'], { encoding: 'utf8' });
  const match = /DOCKER_HOST=(\S+)/.exec(printed.stdout);
  if (match === null) throw new Error(`scripts/docker-engine env printed no DOCKER_HOST: ${printed.stdout}`);
  const env = { ...process.env, DOCKER_HOST: (match[1] as string).replace(/^["']|["']$/g, '') };
  return {
    env,
    docker(args, options = {}) {
      const result = spawnSync(DOCKER_CLIENT, [...args], {
        encoding: 'utf8',
        env,
        input: options.input,
        timeout: options.timeoutMs ?? 180_000,
        maxBuffer: 256 * 1024 * 1024,
      });
      if (!options.allowFailure && result.status !== 0) {
        throw new Error(`docker ${args.join(' ')} exited ${String(result.status)}: ${result.stderr.trim()}`);
      }
      return result;
    },
  };
}

/** stdout and stderr of a container, as docker logs prints them. */
export function containerLogs(engine: Engine, name: string): string {
  const logs = engine.docker(['logs', name], { allowFailure: true });
  return `${logs.stdout}${logs.stderr}`;
}

/** The JSON lines of a container's logs (the sidecar's and the entrypoint's). */
export function containerJsonLines(engine: Engine, name: string): JsonLine[] {
  const lines: JsonLine[] = [];
  for (const text of containerLogs(engine, name).split('\n')) {
    if (!text.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(text) as JsonLine);
    } catch {
      // gobmp's dump lines also start with "{" and may be cut; only whole objects count.
    }
  }
  return lines;
}

/** Polls `condition` every 500 ms (each probe runs the docker CLI); false when `limitMs` passed first. */
export function pollEngine(condition: () => boolean, limitMs: number): Promise<boolean> {
  return pollUntil(condition, limitMs, ENGINE_POLL_MS);
}

/** A container's state as `docker inspect` reports it. */
export function containerState(engine: Engine, name: string): { running: boolean; exitCode: number } {
  const out = engine.docker(['inspect', '--format', '{{.State.Running}} {{.State.ExitCode}}', name]);
  const [running, exitCode] = out.stdout.trim().split(' ');
  return { running: running === 'true', exitCode: Number(exitCode) };
}

/** Loads the images of `archivePath` unless every one of them is already in the engine. */
export function ensureImagesLoaded(engine: Engine, archivePath: string, tags: readonly string[]): void {
  const missing = tags.filter((tag) => engine.docker(['image', 'inspect', tag], { allowFailure: true }).status !== 0);
  if (missing.length > 0) engine.docker(['load', '-i', archivePath], { timeoutMs: 600_000 });
}

/** The image tags of deploy/images/images.json, by role. */
export function builtImages(): { readonly initiator: string; readonly terminator: string } {
  const manifest = JSON.parse(readFileSync(join(REPO, 'deploy', 'images', 'images.json'), 'utf8')) as {
    registry: string;
    images: { name: string; tag: string; role: string }[];
  };
  const tagOf = (role: string): string => {
    const entry = manifest.images.find((image) => image.role === role);
    if (entry === undefined) throw new Error(`deploy/images/images.json has no ${role} image`);
    return `${manifest.registry}/${entry.name}:${entry.tag}`;
  };
  return { initiator: tagOf('initiator'), terminator: tagOf('terminator') };
}

/**
 * Runs an image suite only where it can mean something: in the kernel lab,
 * through scripts/test-images, which names the images archive (and the apps
 * folder when @needsApps). Elsewhere one skip with the reason, or a failure
 * where TCP-AO is required.
 */
export function imageSuite(needsApps: boolean, suite: (archivePath: string, appsBin: string) => void): void {
  const archive = process.env['TCPAO_IMAGES_ARCHIVE'];
  const appsBin = process.env['TCPAO_APPS_BIN'];
  const support = aoSupport();
  if (support.supported && archive !== undefined && (!needsApps || appsBin !== undefined)) {
    suite(archive, appsBin ?? '');
    return;
  }
  const missing = needsApps ? 'TCPAO_IMAGES_ARCHIVE or TCPAO_APPS_BIN is not set' : 'TCPAO_IMAGES_ARCHIVE is not set';
  const reason = !support.supported
    ? `this kernel lacks TCP-AO (${support.reason}); scripts/test-images runs this suite in the kernel lab`
    : `${missing}; run this suite through scripts/test-images (make test-images)`;
  if (aoRequired()) t.fail(reason);
  else t.pass('needs the kernel lab and the built images', { skip: reason });
}

/** TcpExt TCPAO* counters of a container's network namespace. */
export function containerAoCounters(engine: Engine, name: string): Record<string, number> {
  return parseAoCounters(engine.docker(['exec', name, 'cat', '/proc/net/netstat']).stdout);
}

/**
 * Injects @route into the gobgpd of container @name, retrying while its API
 * starts. Resolves undefined once added, or gobgp's last output when it never was.
 */
export async function addGobgpRoute(engine: Engine, name: string, route: string, limitMs: number): Promise<string | undefined> {
  let last = '';
  const added = await pollEngine(() => {
    const out = engine.docker(['exec', name, 'gobgp', 'global', 'rib', 'add', route, '-a', 'ipv4'], { allowFailure: true });
    last = `${out.stdout}${out.stderr}`.trim();
    return out.status === 0;
  }, limitMs);
  return added ? undefined : last;
}
