import type { ChildProcess } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';

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

/** What a test does to a peer server it started: find, signal, restart and stop it, read its log. */
export interface ServerControls {
  pid(): number;
  signal(sig: NodeJS.Signals): void;
  restart(): Promise<void>;
  /** Stops it and removes its temp dir. */
  stop(): Promise<void>;
  log(): Promise<string>;
}

/** The controls of a server run by `launch`/`halt`, whose current process `child()` returns. */
export function serverControls(o: {
  child: () => ChildProcess | undefined;
  launch: () => Promise<void>;
  halt: () => Promise<void>;
  dir: string;
  logPath: string;
}): ServerControls {
  return {
    pid: () => o.child()?.pid ?? -1,
    signal: (sig) => {
      o.child()?.kill(sig);
    },
    restart: async () => {
      await o.halt();
      await o.launch();
    },
    stop: async () => {
      await o.halt();
      await rm(o.dir, { recursive: true, force: true });
    },
    log: () => readFile(o.logPath, 'utf8').catch(() => ''),
  };
}
