// Starts `caddy oss-sandbox` for a browser test. CADDY_BIN names a built
// Caddy with this plugin; otherwise `go run ./cmd/caddy` is used.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { repoRoot } from './ossemu.mjs';

export async function freePort() {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

export const aliOSSBundle = path.join(repoRoot, 'e2e', 'node_modules', 'ali-oss', 'dist', 'aliyun-oss-sdk.min.js');
export const uppyDist = path.join(repoRoot, 'e2e', 'node_modules', 'uppy', 'dist');
// uppyCurrentDist is the bundle of the pinned current @uppy packages that
// `npm run build:uppy` makes.
export const uppyCurrentDist = path.join(repoRoot, 'e2e', 'build', 'uppy-current');

// startSandbox's flags are the sandbox's ('no-callbacks': true for a flag
// without a value); 'uppy-dist' defaults to uppyDist.
export async function startSandbox({ 'uppy-dist': dist = uppyDist, ...flags } = {}) {
  const port = await freePort();
  const ossPort = await freePort();
  const args = ['oss-sandbox', '--listen', `127.0.0.1:${port}`, '--oss-listen', `127.0.0.1:${ossPort}`,
    '--ali-oss-js', aliOSSBundle, '--uppy-dist', dist];
  for (const [k, v] of Object.entries(flags)) {
    if (v === true) args.push(`--${k}`);
    else args.push(`--${k}`, String(v));
  }
  const bin = process.env.CADDY_BIN && path.resolve(process.env.CADDY_BIN);
  const child = bin
    ? spawn(bin, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('go', ['run', './cmd/caddy', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr = [];
  child.stderr.on('data', (d) => stderr.push(d));
  const lines = createInterface({ input: child.stdout });
  const info = { port, ossPort, child };
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`oss-sandbox did not start in 120 s:\n${Buffer.concat(stderr)}`)), 120_000);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`oss-sandbox exited with ${code}:\n${Buffer.concat(stderr)}`)); });
    lines.on('line', (line) => {
      const m = line.match(/upload page:\s+(\S+)/);
      if (m) info.pageURL = m[1];
      if (/Press Ctrl\+C/.test(line)) { clearTimeout(timer); resolve(); }
    });
  });
  info.ossEndpoint = `http://127.0.0.1:${ossPort}`;
  info.stop = async () => {
    if (child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGINT');
    await exited;
  };
  return info;
}
