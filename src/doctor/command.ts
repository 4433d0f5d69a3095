/**
 * `tcpao-proxy doctor`: the CLI face of runDoctor. Prints the report (human or
 * JSON) on stdout; exit status 0 when no check fails, 1 when one does. Bad
 * arguments are usage errors (status 2) raised by the CLI's parser.
 */
import { usageError, type CliCommand } from '../cli/command.js';
import { MODES, type Mode } from '../config/schema.js';
import { realDeps, runDoctor } from './doctor.js';
import { renderHuman, renderJson } from './report.js';
import type { DoctorDeps } from './types.js';

const EXIT_NOTHING_FAILS = 0;
const EXIT_CHECK_FAILED = 1;

export interface DoctorCommandWiring {
  /** The system the checks run against. */
  readonly deps: (env: NodeJS.ProcessEnv) => DoctorDeps;
  /** Whether stdout is a terminal (colour is used only then). */
  readonly stdoutIsTty: () => boolean;
}

const REAL_WIRING: DoctorCommandWiring = {
  deps: realDeps,
  stdoutIsTty: () => process.stdout.isTTY === true,
};

export function createDoctorCommand(wiring: DoctorCommandWiring = REAL_WIRING): CliCommand {
  return {
    name: 'doctor',
    summary: 'check that this host (and a config) can run the sidecar',
    usage: 'doctor [--config FILE] [--mode MODE] [--json]',
    description:
      'Checks the kernel (version, CONFIG_TCP_AO, a runtime TCP-AO probe), each MAC algorithm, the\n' +
      "process's privileges and the netns TCP-AO counters. With --config it also checks that the config\n" +
      'validates, every key source resolves (keys are never printed), the listen address can be bound,\n' +
      'the local app endpoint answers and the peer addresses suit TCP-AO (no loopback or NAT mismatch).\n' +
      'Each check passes, warns, fails or is skipped with a reason; failures and warnings say what to do.\n' +
      'Exit status: 0 when no check fails, 1 when one does, 2 on a bad command line.\n' +
      'See docs/doctor.md for every check and the --json schema (tcpao-proxy.doctor/v1).',
    options: {
      config: { type: 'string', short: 'c', valueName: 'FILE', description: 'also check this sidecar config against this host' },
      mode: {
        type: 'string',
        valueName: 'MODE',
        choices: MODES,
        description: 'initiator or terminator; also check that the config is for this side',
      },
      json: { type: 'boolean', description: 'print the report as JSON (schema tcpao-proxy.doctor/v1)' },
    },
    async run(context) {
      const configPath = context.options['config'];
      const mode = context.options['mode'];
      if (mode !== undefined && configPath === undefined) {
        throw usageError('--mode checks a config against a side; give --config FILE too, or drop --mode');
      }
      const report = await runDoctor(wiring.deps(context.io.env), {
        ...(typeof configPath === 'string' ? { configPath } : {}),
        ...(typeof mode === 'string' ? { mode: mode as Mode } : {}),
      });
      if (context.options['json'] === true) {
        context.io.stdout(renderJson(report));
      } else {
        const noColor = context.io.env['NO_COLOR'];
        const colour = wiring.stdoutIsTty() && (noColor === undefined || noColor === '');
        context.io.stdout(renderHuman(report, { colour }));
      }
      return report.ok ? EXIT_NOTHING_FAILS : EXIT_CHECK_FAILED;
    },
  };
}

export const doctorCommand: CliCommand = createDoctorCommand();
