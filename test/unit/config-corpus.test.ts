/**
 * The malformed-config corpus (test/fixtures/config/bad) and the good configs
 * (test/fixtures/config/good), each run through the real CLI as a child
 * process, both as `check-config --config F` and as `--mode M --config F`.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import t from 'tap';

const REPO = resolve(__dirname, '..', '..', '..');
const BIN = join(REPO, 'bin', 'tcpao-proxy');
const FIXTURES = join(REPO, 'test', 'fixtures', 'config');

interface Expected {
  readonly code: string;
  readonly path: string;
}

interface BadCase {
  readonly file: string;
  readonly mode: 'initiator' | 'terminator';
  readonly expect: readonly Expected[];
  readonly env?: Readonly<Record<string, string>>;
  readonly secrets?: readonly string[];
}

interface GoodCase {
  readonly file: string;
  readonly mode: 'initiator' | 'terminator';
  readonly active: number;
  readonly total: number;
  readonly warnings: number;
  /** "CODE path" of each warning line, in order. */
  readonly warningCodes: readonly string[];
  readonly summary: readonly string[];
}

const badManifest = JSON.parse(readFileSync(join(FIXTURES, 'bad', 'manifest.json'), 'utf8')) as {
  env: Record<string, string>;
  cases: BadCase[];
};
const goodManifest = JSON.parse(readFileSync(join(FIXTURES, 'good', 'manifest.json'), 'utf8')) as { cases: GoodCase[] };

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runCli(args: readonly string[], env: Readonly<Record<string, string>>): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const status = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        done({ status, stdout, stderr });
      },
    );
  });
}

/** Runs jobs with at most `limit` child processes at a time. */
async function pool<T, R>(items: readonly T[], limit: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await job(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}

/** Every key value the fixtures use, in every encoding a leak could take. */
function secretNeedles(extra: readonly string[]): string[] {
  const values = new Set<string>(extra);
  for (const value of Object.values(badManifest.env)) values.add(value);
  for (const file of readdirSync(join(FIXTURES, 'keys'))) {
    values.add(readFileSync(join(FIXTURES, 'keys', file), 'latin1').trim());
  }
  for (const value of [...values]) {
    if (/^(?:[0-9a-fA-F]{2})+$/.test(value)) values.add(Buffer.from(value, 'hex').toString('latin1'));
    if (/^[A-Za-z0-9+/]+={0,2}$/.test(value) && value.length % 4 === 0) values.add(Buffer.from(value, 'base64').toString('latin1'));
  }
  const needles = new Set<string>();
  for (const value of values) {
    // Short values ("abc") would match by coincidence; every real fixture key is longer.
    if (value.length < 8) continue;
    const bytes = Buffer.from(value, 'latin1');
    needles.add(value);
    needles.add(bytes.toString('hex'));
    needles.add(bytes.toString('hex').toUpperCase());
    needles.add(bytes.toString('base64'));
    needles.add(bytes.toString('base64url'));
    needles.add(Buffer.from(value, 'utf8').toString('hex'));
  }
  return [...needles];
}

function leakedSecrets(run: Run, needles: readonly string[]): string[] {
  const output = run.stdout + run.stderr;
  return needles.filter((needle) => output.includes(needle));
}

t.test('the bad corpus is large and covers both modes and every code', async (t) => {
  const cases = badManifest.cases;
  t.ok(cases.length >= 50, `${cases.length} malformed configs`);
  const files = readdirSync(join(FIXTURES, 'bad')).filter((file) => file.endsWith('.toml'));
  t.same(files.sort(), cases.map((c) => c.file).sort(), 'every fixture file has exactly one manifest entry');
  t.ok(cases.some((c) => c.mode === 'initiator') && cases.some((c) => c.mode === 'terminator'), 'both modes');
  const codes = new Set(cases.flatMap((c) => c.expect.map((e) => e.code)));
  t.same([...codes].sort(), ['ERR_TCPAO_CONFIG_INVALID', 'ERR_TCPAO_CONFIG_SYNTAX', 'ERR_TCPAO_KEY_SOURCE']);
});

t.test('every malformed config exits 2 with one coded line per problem and no stack or key', async (t) => {
  const jobs = badManifest.cases.flatMap((entry) => {
    const file = join(FIXTURES, 'bad', entry.file);
    return [
      { entry, label: 'check-config', args: ['check-config', '--config', file] },
      { entry, label: `--mode ${entry.mode}`, args: ['--mode', entry.mode, '--config', file] },
    ];
  });
  const runs = await pool(jobs, 4, (job) => runCli(job.args, { ...badManifest.env, ...(job.entry.env ?? {}) }));
  jobs.forEach((job, index) => {
    const run = runs[index] as Run;
    const { entry } = job;
    const file = join(FIXTURES, 'bad', entry.file);
    t.test(`${entry.file} (${job.label})`, async (t) => {
      t.equal(run.status, 2, 'exit status 2');
      t.equal(run.stdout, '', 'nothing on stdout');
      t.notMatch(run.stderr, /^\s+at /m, 'no stack trace');
      const lines = run.stderr.split('\n').filter((line) => line !== '');
      const got = lines.map((line) => {
        const match = /^tcpao-proxy: (ERR_TCPAO_[A-Z_]+): (.+?): \S.*$/.exec(line);
        return match === null ? `unparsed line: ${line}` : `${match[1]} ${match[2]}`;
      });
      const expected = entry.expect.map((e) => `${e.code} ${e.path.replace('{file}', file)}`);
      t.same([...got].sort(), [...expected].sort(), 'one line per expected problem, each with its code and TOML path');
      t.same(leakedSecrets(run, secretNeedles(entry.secrets ?? [])), [], 'no key bytes in any encoding');
    });
  });
});

t.test('good configs validate, summarise without key bytes, and agree with --mode', async (t) => {
  const needles = secretNeedles([]);
  for (const entry of goodManifest.cases) {
    const file = join(FIXTURES, 'good', entry.file);
    const run = await runCli(['check-config', '--config', file, '--mode', entry.mode], badManifest.env);
    t.test(entry.file, async (t) => {
      t.equal(run.status, 0, 'exit status 0');
      t.equal(run.stderr, '', 'nothing on stderr');
      t.match(run.stdout, `valid ${entry.mode} config`);
      t.match(run.stdout, `policies (${entry.active} of ${entry.total} installed)`);
      const warningLines = run.stdout.split('\n').filter((line) => line.includes('warning:'));
      t.equal(warningLines.length, entry.warnings, 'warnings');
      t.same(
        warningLines.map((line) => /^ {2}warning: (WARN_TCPAO_[A-Z_]+): (\S+): \S/.exec(line)?.slice(1, 3).join(' ') ?? `unparsed: ${line}`),
        entry.warningCodes,
        'one line per warning: its code, TOML path and message',
      );
      for (const fragment of entry.summary) t.ok(run.stdout.includes(fragment), `summary shows: ${fragment}`);
      t.same(leakedSecrets(run, needles), [], 'no key bytes in any encoding');
    });
    const other = entry.mode === 'initiator' ? 'terminator' : 'initiator';
    const mismatch = await runCli(['check-config', '--config', file, '--mode', other], badManifest.env);
    t.test(`${entry.file} with --mode ${other}`, async (t) => {
      t.equal(mismatch.status, 2);
      t.equal(mismatch.stderr, `tcpao-proxy: ERR_TCPAO_MODE_MISMATCH: ${entry.mode}: --mode ${other} was given but this config has a [${entry.mode}] section; run with --mode ${entry.mode} or use the ${other}'s config\n`);
    });
  }
});

t.test('the shipped deploy templates, rendered with sample values, validate', async (t) => {
  const samples: Record<string, Record<string, string>> = {
    initiator: { LISTEN_PLAIN: '127.0.0.1:5000', REMOTE_AO: '10.10.10.2:1790', PEER_IP: '10.10.10.2', PEER_PORT: '1790', KEY_ID: '1' },
    terminator: { LISTEN_AO: '0.0.0.0:1790', FORWARD_PLAIN: '127.0.0.1:11019', PEER_IP: '10.10.10.1', PEER_PORT: '1790', KEY_ID: '1' },
  };
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-templates-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const mode of ['initiator', 'terminator'] as const) {
    const template = readFileSync(join(REPO, 'deploy', 'config', `${mode}.toml.tmpl`), 'utf8');
    const values = samples[mode] as Record<string, string>;
    const rendered = template.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => values[name] ?? `\${${name}}`);
    t.notMatch(rendered, /\$\{/, `${mode} template has only the known placeholders`);
    const file = join(dir, `${mode}.toml`);
    writeFileSync(file, rendered);
    const run = await runCli(['check-config', '--mode', mode, '--config', file], { TCPAO_KEY: 'template-sample-key-0123' });
    t.equal(run.status, 0, `${mode} template validates: ${run.stderr}`);
    t.match(run.stdout, 'port 1790', `${mode}: peer_port 1790 is accepted as written`);
  }
});
