// Starts the ossemu emulator (the Go command cmd/ossemu) for a Node test
// and stops it afterwards. OSSEMU_BIN names a prebuilt binary; otherwise
// `go run ./cmd/ossemu` is used from the repository root.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import http from 'node:http';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function startEmulator({ buckets = [], keys = {}, roles = [] } = {}) {
  const args = ['-exit-on-stdin-close'];
  for (const b of buckets) args.push('-bucket', b);
  for (const [id, secret] of Object.entries(keys)) args.push('-key', `${id}:${secret}`);
  for (const r of roles) args.push('-role', r);
  const bin = process.env.OSSEMU_BIN && path.resolve(process.env.OSSEMU_BIN);
  const child = bin
    ? spawn(bin, args, { cwd: repoRoot, stdio: ['pipe', 'pipe', 'inherit'] })
    : spawn('go', ['run', './cmd/ossemu', ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  // The first line describes the emulator; each later line answers one
  // command written to its standard input, in order.
  const waiting = [];
  let first;
  const started = new Promise((resolve) => { first = resolve; });
  lines.on('line', (line) => {
    if (first) { const f = first; first = undefined; f(line); return; }
    waiting.shift()?.resolve(line);
  });
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`ossemu exited with ${code} before answering`));
  });
  const info = JSON.parse(await Promise.race([
    started,
    once(child, 'exit').then(([code]) => { throw new Error(`ossemu exited with ${code} before starting`); }),
  ]));
  // command sends one control command (see ossemu.ServeCommands) and
  // resolves once the emulator has carried it out.
  info.command = (name) => new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.stdin.writableEnded) {
      reject(new Error(`ossemu is not running; cannot send ${name}`));
      return;
    }
    waiting.push({
      resolve: (line) => {
        let answer;
        try { answer = JSON.parse(line); } catch { reject(new Error(`ossemu command ${name}: answer ${line}`)); return; }
        if (answer.ok) resolve(answer);
        else reject(new Error(`ossemu command ${name}: ${answer.error}`));
      },
      reject,
    });
    child.stdin.write(`${name}\n`);
  });
  // expireSessions makes every STS credential issued so far expire now.
  info.expireSessions = () => info.command('expire-sessions');
  info.stop = async () => {
    if (child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.stdin.end();
    await exited;
  };
  return info;
}

// request sends an HTTP request to a URL whose host may be a
// <bucket>.localhost name, which Node's resolver does not know: every host
// is dialled on 127.0.0.1, and the Host header stays as in the URL.
export function request(url, { method = 'GET', headers = {}, body } = {}) {
  const lookup = (host, opts, cb) => (opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4));
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, lookup }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
