// The standalone sandbox tax service (`fapiao simulator`) in a process and a directory of its own,
// as the benchmarks use it: the tax service is another machine in production, so its work must
// not be counted as, or compete inside, the server's. For the same reason it runs niced (10, like
// the server's own background process): on a shared 2-core machine a stand-in for a remote service
// must not take the CPU from the requests being measured. Alone (the ceiling) it has the machine.
import { spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot, sleep, tempDataDir } from '../../test/support/server-process.js';

const SIMULATOR_NICE = 10;

export interface Simulator {
  url: string;
  pid: number;
  stop(): void;
}

export async function startSimulator(): Promise<Simulator> {
  const dir = tempDataDir('fapiao-bench-sim-');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'fapiao.mjs'), 'simulator', '--port', String(port), '--data-dir', dir.dataDir], { stdio: 'ignore' });
  setPriority(child.pid!, SIMULATOR_NICE);
  const stop = () => {
    child.kill('SIGKILL');
    dir.remove();
  };
  for (let i = 0; !(await fetch(`${url}/admin/info`).then((r) => r.ok, () => false)); i++) {
    if (i > 200 || child.exitCode !== null) {
      stop();
      throw new Error('the simulator did not start');
    }
    await sleep(100);
  }
  return { url, pid: child.pid!, stop };
}
