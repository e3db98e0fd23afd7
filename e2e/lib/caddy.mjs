// Runs Caddy with a Caddyfile for a browser test. CADDY_BIN names a built
// Caddy with this plugin; otherwise `go run ./cmd/caddy` is used.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from './ossemu.mjs';

// startCaddy writes caddyfile(dir) to a temporary folder dir (which the
// Caddyfile may use, e.g. for storage or files) and runs it until the
// site at readyURL answers. It rejects with Caddy's output when Caddy
// exits first, so a config error shows as such.
export async function startCaddy({ caddyfile, readyURL }) {
  const dir = await mkdtemp(path.join(tmpdir(), 'caddyoss-e2e-'));
  const config = path.join(dir, 'Caddyfile');
  await writeFile(config, caddyfile(dir));
  const args = ['run', '--config', config, '--adapter', 'caddyfile'];
  const bin = process.env.CADDY_BIN && path.resolve(process.env.CADDY_BIN);
  const child = bin
    ? spawn(bin, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('go', ['run', './cmd/caddy', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = [];
  child.stdout.on('data', (d) => output.push(d));
  child.stderr.on('data', (d) => output.push(d));
  const exited = once(child, 'exit');
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`caddy exited with ${child.exitCode}:\n${Buffer.concat(output)}`);
    }
    try {
      await fetch(readyURL);
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGINT');
        throw new Error(`caddy did not answer ${readyURL} in 120 s:\n${Buffer.concat(output)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    dir,
    output: () => Buffer.concat(output).toString(),
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGINT');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
