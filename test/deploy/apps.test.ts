/**
 * The third-party Go programs scripts/build-apps builds from deploy/apps/*:
 * each binary is static, runs, reports the version go.mod pins, and embeds
 * the module checksum go.sum pins. The first run may build for a long time
 * (cold: see docs/deployment-runbook.md); a cached run only checks the cache.
 */
import t from 'tap';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BUILD_APPS = path.join(ROOT, 'scripts', 'build-apps');
const PROGRAMS = ['gobgpd', 'gobgp', 'gobmp', 'containerlab', 'cosign'] as const;
type Program = (typeof PROGRAMS)[number];

/** Which deploy/apps module pins each program, and the module it is built from. */
const PINS: Readonly<Record<Program, { readonly dir: string; readonly module: string }>> = {
  gobgpd: { dir: 'gobgp', module: 'github.com/osrg/gobgp/v3' },
  gobgp: { dir: 'gobgp', module: 'github.com/osrg/gobgp/v3' },
  gobmp: { dir: 'gobmp', module: 'github.com/sbezverk/gobmp' },
  containerlab: { dir: 'containerlab', module: 'github.com/srl-labs/containerlab' },
  cosign: { dir: 'cosign', module: 'github.com/sigstore/cosign/v2' },
};

const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const ELF_MAGIC = 0x7f454c46;

// A cold build of all five takes far longer than tap's per-file default.
t.setTimeout(3 * 60 * 60 * 1_000);

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', env, maxBuffer: 64 * 1024 * 1024 });
}

function pinnedVersion(program: Program): string {
  const { dir, module } = PINS[program];
  const goMod = readFileSync(path.join(ROOT, 'deploy', 'apps', dir, 'go.mod'), 'utf8');
  const escaped = module.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const match = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, 'm').exec(goMod);
  if (match?.[1] === undefined) throw new Error(`deploy/apps/${dir}/go.mod does not require ${module}`);
  return match[1];
}

interface ElfSummary {
  /** p_type of every program header. */
  readonly segmentTypes: readonly number[];
  readonly sectionNames: readonly string[];
}

/** Reads the program and section headers of an ELF64 little-endian file. */
function readElf(file: string): ElfSummary {
  const fd = openSync(file, 'r');
  const read = (length: number, position: number): Buffer => {
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, position);
    return buffer;
  };
  try {
    const header = read(64, 0);
    if (header.readUInt32BE(0) !== ELF_MAGIC) throw new Error(`${file} is not an ELF file`);
    if (header[4] !== 2 || header[5] !== 1) throw new Error(`${file} is not ELF64 little-endian`);
    const phoff = Number(header.readBigUInt64LE(0x20));
    const shoff = Number(header.readBigUInt64LE(0x28));
    const [phentsize, phnum, shentsize, shnum, shstrndx] = [0x36, 0x38, 0x3a, 0x3c, 0x3e].map((at) => header.readUInt16LE(at));
    const programHeaders = read(phentsize * phnum, phoff);
    const sectionHeaders = read(shentsize * shnum, shoff);
    const names = sectionHeaders.subarray(shstrndx * shentsize);
    const strtab = read(Number(names.readBigUInt64LE(0x20)), Number(names.readBigUInt64LE(0x18)));
    return {
      segmentTypes: Array.from({ length: phnum }, (_, i) => programHeaders.readUInt32LE(i * phentsize)),
      sectionNames: Array.from({ length: shnum }, (_, i) => {
        const start = sectionHeaders.readUInt32LE(i * shentsize);
        return strtab.toString('latin1', start, strtab.indexOf(0, start));
      }),
    };
  } finally {
    closeSync(fd);
  }
}

const go = run('go', ['version']);
const skip = go.status === 0 ? false : 'Go is not installed; scripts/build-apps needs Go 1.26';

t.test('scripts/build-apps refuses an unknown program in one line, exit 2', async (t) => {
  const result = run(BUILD_APPS, ['no-such-program']);
  t.equal(result.status, 2);
  t.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
  t.match(result.stderr, /unknown program 'no-such-program'/);
});

t.test('a module that cannot be fetched is named with go\'s error, and no build becomes current', { skip }, async (t) => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'tcpao-apps-'));
  t.teardown(() => rmSync(cache, { recursive: true, force: true }));
  // An empty module cache and no proxy: nothing can be downloaded.
  const result = run(BUILD_APPS, ['gobgp'], { ...process.env, TCPAO_APPS_CACHE: cache, GOPROXY: 'off' });
  t.equal(result.status, 1, result.stderr);
  t.match(result.stderr, `build-apps: gobgp FAILED: go build github.com/osrg/gobgp/v3/cmd/gobgp (github.com/osrg/gobgp/v3 ${pinnedVersion('gobgp')}, deploy/apps/gobgp) exited 1:`);
  t.match(result.stderr, /GOPROXY=off/, "go's own error is shown");
  t.notOk(existsSync(path.join(cache, 'current')), 'current is not created');
  // The module cache is read-only as Go writes it.
  run('chmod', ['-R', 'u+w', cache]);
});

t.test('the built programs', { skip }, async (t) => {
  const first = run(BUILD_APPS, ['--print-dir']);
  t.equal(first.status, 0, first.status === 0 ? 'scripts/build-apps --print-dir succeeds' : first.stderr);
  if (first.status !== 0) return;
  const binDir = first.stdout.trim();
  t.equal(first.stdout, `${binDir}\n`, 'stdout is the bin directory alone');

  t.test('a second run rebuilds nothing, and current is this build', async (t) => {
    const again = run(BUILD_APPS, ['--print-dir']);
    t.equal(again.status, 0, again.status === 0 ? 'the second run succeeds' : again.stderr);
    t.equal(again.stdout.trim(), binDir);
    for (const program of PROGRAMS) t.match(again.stderr, new RegExp(`^build-apps: ${program}: cached, [0-9.]+ MB$`, 'm'));
    t.notMatch(again.stderr, /building/);
    t.equal(realpathSync(path.join(binDir, '..', '..', 'current', 'bin')), realpathSync(binDir));
  });

  t.test('each binary is static and stripped: no ELF interpreter or dynamic section, no symbols or DWARF', async (t) => {
    for (const program of PROGRAMS) {
      const elf = readElf(path.join(binDir, program));
      t.ok(elf.segmentTypes.length > 0, `${program} has program headers`);
      t.notOk(elf.segmentTypes.includes(PT_INTERP), `${program} has no PT_INTERP`);
      t.notOk(elf.segmentTypes.includes(PT_DYNAMIC), `${program} has no PT_DYNAMIC`);
      t.ok(elf.sectionNames.includes('.text'), `${program}: section names read`);
      t.notOk(elf.sectionNames.includes('.symtab'), `${program} has no symbol table (-s)`);
      t.same(elf.sectionNames.filter((name) => /^\.z?debug_/.test(name)), [], `${program} has no DWARF (-w)`);
    }
  });

  t.test('each binary embeds the pinned module with go.sum\'s checksum, built without cgo and trimmed', async (t) => {
    for (const program of PROGRAMS) {
      const { dir, module } = PINS[program];
      const version = pinnedVersion(program);
      const info = run('go', ['version', '-m', path.join(binDir, program)]);
      t.equal(info.status, 0, info.stderr);
      // "mod" when the main package is in the module, "dep" otherwise.
      const embedded = new RegExp(`^\\t(?:mod|dep)\\t${module.replace(/[.]/g, '\\.')}\\t(\\S+)\\t(h1:\\S+)$`, 'm').exec(info.stdout);
      t.equal(embedded?.[1], version, `${program} is built from ${module} ${version}`);
      const goSum = readFileSync(path.join(ROOT, 'deploy', 'apps', dir, 'go.sum'), 'utf8');
      t.ok(embedded !== null && goSum.includes(`${module} ${version} ${embedded[2]}\n`), `${program}: the embedded checksum is go.sum's`);
      t.match(info.stdout, /^\tbuild\tCGO_ENABLED=0$/m, `${program}: CGO_ENABLED=0`);
      t.match(info.stdout, /^\tbuild\t-trimpath=true$/m, `${program}: -trimpath`);
    }
  });

  t.test('gobgpd and gobgp report the pinned version', async (t) => {
    const number = pinnedVersion('gobgpd').replace(/^v/, '');
    for (const program of ['gobgpd', 'gobgp'] as const) {
      const result = run(path.join(binDir, program), ['--version']);
      t.equal(result.status, 0, result.stderr);
      t.match(result.stdout, new RegExp(`^${program} version ${number.replace(/[.]/g, '\\.')}$`, 'm'));
    }
  });

  t.test('gobmp --help lists the flags the terminator image runs it with', async (t) => {
    const result = run(path.join(binDir, 'gobmp'), ['--help']);
    t.equal(result.status, 0, 'gobmp --help exits 0');
    const terminator = readFileSync(path.join(ROOT, 'deploy', 'entrypoint', 'terminator.sh'), 'utf8');
    const appCmd = /^readonly DEFAULT_APP_CMD='gobmp ([^']*)'$/m.exec(terminator)?.[1];
    t.ok(appCmd !== undefined, 'terminator.sh has a default gobmp command');
    for (const flag of (appCmd ?? '').split(' ').map((arg) => arg.replace(/^--?([^=]+).*$/, '$1'))) {
      t.match(result.stderr, new RegExp(`^\\s+-${flag}\\b`, 'm'), `gobmp --help lists -${flag}`);
    }
  });

  t.test('containerlab version reports the pinned version', async (t) => {
    const result = run(path.join(binDir, 'containerlab'), ['version', '--json']);
    t.equal(result.status, 0, result.stderr);
    const reported = JSON.parse(result.stdout) as { version?: unknown };
    t.equal(reported.version, pinnedVersion('containerlab').replace(/^v/, ''));
  });

  t.test('cosign version reports the pinned version', async (t) => {
    const result = run(path.join(binDir, 'cosign'), ['version', '--json']);
    t.equal(result.status, 0, result.stderr);
    const reported = JSON.parse(result.stdout) as { gitVersion?: unknown };
    t.equal(reported.gitVersion, pinnedVersion('cosign'));
  });
});
