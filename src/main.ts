/**
 * Process entry point: bin/tcpao-proxy calls main(argv). Wires the CLI to the
 * real process (stdout, stderr, environment, the sidecar) and turns the
 * command's result into the exit status.
 */
import { runCli, reportError, type CliIo } from './cli.js';
import type { Logger } from './log.js';
import { runSidecar } from './proxy/sidecar.js';

export function main(argv: string[]): void {
  let logger: Logger | undefined;
  const io: CliIo = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    onLogger: (root) => {
      logger = root;
    },
  };
  // Anything that escapes the sidecar's own handling is a bug: one line on
  // stderr, the stack in the log at debug level, exit status 1.
  const fatal = (err: unknown): void => {
    process.exit(reportError(err, io, logger?.child({ module: 'main' })));
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  runCli(argv, io, { runSidecar }).then((status) => {
    // stdout and stderr are synchronous for files and pipes on Linux, and the
    // logger writes synchronously, so exiting now loses no output.
    process.exit(status);
  }, fatal);
}
