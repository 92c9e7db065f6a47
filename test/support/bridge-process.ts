/**
 * A bridge run as an operator runs it: `sip-xmpp-bridge start --config FILE` from source in its
 * own process, with the config written to a temp dir. For tests that kill processes (SIGKILL
 * loses what was not yet in Redis) and restart them with the same config; stdout (JSON log
 * lines) is kept across runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './ports.js';
import { stopProcess } from './process.js';

/** Most log text kept per process (all runs); older lines go first. */
const MAX_LOG_CHARS = 4_000_000;

export interface BridgeProcessOptions {
  /** Name in failure messages, e.g. `sip-edge-1`. */
  name: string;
  /** The configuration (YAML accepts JSON, so it is written as JSON). */
  config: Record<string, unknown>;
  startTimeoutMs?: number;
}

export interface BridgeLogLine {
  readonly msg?: string;
  readonly level?: number;
  readonly [key: string]: unknown;
}

export interface BridgeProcess {
  readonly name: string;
  readonly configPath: string;
  /** Process id of the current run. */
  pid(): number | undefined;
  running(): boolean;
  /** Starts a run and resolves once its log says "bridge started". */
  start(): Promise<void>;
  /** SIGTERM (graceful stop), SIGKILL after `graceMs`; resolves when the process exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL: no shutdown code runs. Resolves when the process exited. */
  kill(): Promise<void>;
  /** kill() if running, then start() with the same config. */
  restart(): Promise<void>;
  /** Everything the process wrote on stdout, all runs. */
  stdout(): string;
  /** stdout's JSON log lines (other lines skipped). */
  logLines(): BridgeLogLine[];
  /** Stops the process and removes its temp dir. */
  close(): Promise<void>;
}

export async function startBridgeProcess(options: BridgeProcessOptions): Promise<BridgeProcess> {
  const dir = await mkdtemp(join(tmpdir(), `bridge-${options.name}-`));
  const configPath = join(dir, 'bridge.yaml');
  await writeFile(configPath, JSON.stringify(options.config, null, 2));
  const bridge = new SpawnedBridge(options.name, configPath, dir, options.startTimeoutMs ?? 20_000);
  try {
    await bridge.start();
  } catch (err) {
    await bridge.close();
    throw err;
  }
  return bridge;
}

class SpawnedBridge implements BridgeProcess {
  private child: ChildProcess | undefined;
  private output = '';
  private stderr = '';
  /** Where the current run's stdout begins in `output`, for its "bridge started" line. */
  private runStart = 0;

  constructor(
    readonly name: string,
    readonly configPath: string,
    private readonly dir: string,
    private readonly startTimeoutMs: number,
  ) {}

  pid(): number | undefined {
    return this.child?.pid;
  }

  running(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running()) throw new Error(`${this.name} is already running`);
    // BRIDGE_NODE_ARGS: extra node flags for the bridge alone, e.g. `--cpu-prof --cpu-prof-dir=DIR`
    // to profile it under the benchmark's load (node refuses --cpu-prof in NODE_OPTIONS).
    const nodeArgs = process.env['BRIDGE_NODE_ARGS']?.split(' ').filter((a) => a !== '') ?? [];
    const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/cli.ts', 'start', '--config', this.configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.runStart = this.output.length;
    this.stderr = '';
    child.stdout?.on('data', (d: Buffer) => this.append(d.toString('utf8')));
    child.stderr?.on('data', (d: Buffer) => {
      if (this.stderr.length < 20_000) this.stderr += d.toString('utf8');
    });
    let exited: string | undefined;
    child.once('exit', (code, signal) => (exited = `exited (${code ?? signal})`));
    try {
      await waitFor(
        `${this.name} to log "bridge started"`,
        () => {
          if (exited !== undefined) throw new Error(`${this.name} ${exited} during start-up:\n${this.stderr}${this.output.slice(this.runStart).slice(-3000)}`);
          return this.output.includes('"msg":"bridge started"', this.runStart) || undefined;
        },
        this.startTimeoutMs,
        20,
      );
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  stop(graceMs = 5_000): Promise<void> {
    return stopProcess(this.child, graceMs);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running()) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  stdout(): string {
    return this.output;
  }

  logLines(): BridgeLogLine[] {
    const lines: BridgeLogLine[] = [];
    for (const line of this.output.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line) as BridgeLogLine);
      } catch {
        // a line cut by SIGKILL mid-write
      }
    }
    return lines;
  }

  async close(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  private append(text: string): void {
    this.output += text;
    if (this.output.length > MAX_LOG_CHARS) {
      const cut = this.output.length - MAX_LOG_CHARS;
      this.output = this.output.slice(cut);
      this.runStart = Math.max(0, this.runStart - cut);
    }
  }
}
