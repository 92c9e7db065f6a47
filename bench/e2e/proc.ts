/** CPU time and resident memory of a process (and its children) from /proc, Linux only. */
import { readFileSync, readdirSync } from 'node:fs';

const TICKS_PER_SEC = 100;

/** utime + stime of `pid` in ms; 0 when it is gone. */
function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SEC;
  } catch {
    return 0;
  }
}

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** `pid` and every process whose parent chain leads to it (Kamailio forks its workers). */
export function processTree(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited while listing
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length && i < 1000; i++) {
    for (const [child, ppid] of parent) if (ppid === tree[i]) tree.push(child);
  }
  return tree;
}

export function cpuMs(pids: readonly number[]): number {
  return pids.reduce((sum, p) => sum + cpuOf(p), 0);
}

/**
 * Resident memory of the processes: RSS for one, the sum of PSS for several (Kamailio's workers
 * all map the same shared-memory segment; summing their RSS would count it once per worker).
 */
export function rssBytes(pids: readonly number[]): number {
  if (pids.length === 1) return rssOf(pids[0]!);
  return pids.reduce((sum, p) => sum + pssOf(p), 0);
}

function pssOf(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
