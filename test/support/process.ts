import type { ChildProcess } from 'node:child_process';

/**
 * Stops a peer process the tests started: SIGCONT first (a frozen, SIGSTOPped server never acts
 * on SIGTERM), then SIGTERM, SIGKILL if it is still there after `graceMs`. Resolves when it exited.
 */
export async function stopProcess(proc: ChildProcess | undefined, graceMs = 5_000): Promise<void> {
  if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGCONT');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
