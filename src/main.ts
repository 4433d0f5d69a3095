/**
 * Process entry point: bin/tcpao-proxy calls main(argv). Wires the CLI to the
 * real process (stdout, stderr, environment, the sidecar) and turns the
 * command's result into the exit status.
 */
import { runCli, reportError, type CliIo } from './cli.js';
import { hasCode } from './errors.js';
import type { Logger } from './log.js';
import { hardenProcess } from './native/index.js';
import { runSidecar } from './run.js';

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
  // Before any key is read: no core file, and no other process of this uid
  // reading our memory or environment. Without the addon no key can be
  // installed, so commands that only check things still run.
  try {
    hardenProcess();
  } catch (err) {
    if (!hasCode(err, 'ERR_TCPAO_ADDON_MISSING')) {
      fatal(err);
      return;
    }
  }
  runCli(argv, io, { runSidecar }).then((status) => exitAfterOutput(status), fatal);
}

/**
 * Exits once what was written to stdout and stderr has left the process.
 * Node leaves a pipe non-blocking, so past the pipe's 64 KiB a write is
 * queued, and exiting at once cut `doctor --json | jq` off mid-report. A
 * reader that stops reading holds the process, as a blocking write would
 * (the logger's synchronous writes already do).
 */
function exitAfterOutput(status: number): void {
  process.exitCode = status;
  const streams = [process.stdout, process.stderr].filter((stream) => stream.writableLength > 0);
  if (streams.length === 0) {
    process.exit(status);
    return;
  }
  let pending = streams.length;
  const drained = (): void => {
    pending -= 1;
    if (pending === 0) process.exit(status);
  };
  // An empty write completes after every write queued before it.
  for (const stream of streams) stream.write('', drained);
}
