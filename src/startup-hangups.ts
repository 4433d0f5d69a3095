/**
 * SIGHUP asks for a reload, but its default action ends the process, and the
 * reload handler exists only once the sidecar runs. From the first line of
 * start-up until then, a HUP is held here (counted, with no other effect);
 * the runtime installs its handler, takes the count and runs one reload for
 * whatever arrived, so a config changed during start-up is still picked up.
 *
 * This module imports nothing, so bin/tcpao-proxy can load it before the rest.
 */
let held = 0;
let holding = false;

const hold = (): void => {
  held += 1;
};

/** Starts holding SIGHUP (idempotent). */
export function holdHangups(): void {
  if (holding) return;
  holding = true;
  process.on('SIGHUP', hold);
}

/** Stops holding and returns how many HUPs arrived; install the real handler first, so none is lost in between. */
export function releaseHangups(): number {
  if (!holding) return 0;
  process.off('SIGHUP', hold);
  holding = false;
  const count = held;
  held = 0;
  return count;
}
