// Every upload mode of the sandbox page, in Chromium: the bytes the
// emulator holds equal the file's, the demo app recorded a verified
// callback, and the page shows the app's JSON. Refusals show a readable
// message and store nothing. A callback the paused demo app could not take
// is delivered once it is resumed. A screenshot of each scenario is kept in
// e2e/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import OSS from 'ali-oss';
import { startSandbox } from '../lib/sandbox.mjs';
import { launchChromium } from '../lib/browser.mjs';
import { repoRoot } from '../lib/ossemu.mjs';

const artifacts = path.join(repoRoot, 'e2e', 'artifacts');
const keyId = 'browser-test-ak';
const keySecret = 'browser-test-secret';

let sandbox;
let browser;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  sandbox = await startSandbox({ 'max-size': '1MB', 'access-key-id': keyId, 'access-key-secret': keySecret });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await sandbox?.stop();
});

// reader reads the emulator's bucket with the account's key (path-style).
function reader(sb) {
  return new OSS({
    region: 'oss-cn-hangzhou', endpoint: sb.ossEndpoint, bucket: 'sandbox',
    accessKeyId: keyId, accessKeySecret: keySecret,
  });
}

async function storedKeys(sb) {
  const res = await reader(sb).list({ prefix: 'uploads/', 'max-keys': 1000 });
  return (res.objects || []).map((o) => o.name).sort();
}

async function callbacks(sb) {
  const res = await fetch(`${sb.pageURL}/demo/callbacks`);
  return res.json();
}

// upload opens the page, chooses the file and mode, and waits for the
// outcome. It returns the page for further checks.
async function upload(sb, name, { file, mode, advanced = {} }) {
  const page = await browser.newPage();
  const stsRequests = [];
  page.on('request', (req) => { if (new URL(req.url()).pathname === '/oss/sts') stsRequests.push(req.url()); });
  page.on('pageerror', (err) => console.error(`page error (${name}):`, err));
  await page.goto(`${sb.pageURL}/`);
  await page.waitForFunction(() => typeof OSS !== 'undefined');
  await page.setInputFiles('#file', file);
  await page.check(`#mode-${mode}`);
  if (Object.keys(advanced).length) {
    await page.click('summary');
    for (const [id, value] of Object.entries(advanced)) await page.fill(`#${id}`, String(value));
  }
  await page.click('#upload');
  await page.waitForSelector('#status[data-state=ok], #status[data-state=error]', { timeout: 60_000 });
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
  return { page, stsRequests };
}

async function expectUploaded(sb, page, file) {
  const status = await page.textContent('#status');
  const error = await page.isVisible('#error') ? await page.textContent('#error') : '';
  assert.equal(await page.getAttribute('#status', 'data-state'), 'ok', `${status} ${error}`);
  const key = await page.textContent('#result-key');
  assert.match(key, /^uploads\//);
  assert.equal(await page.textContent('#result-size'), `${file.buffer.length} bytes`);

  // The bytes in the emulator are the file's.
  const stored = await reader(sb).get(key);
  assert.ok(Buffer.compare(stored.content, file.buffer) === 0, 'stored bytes differ from the file');
  assert.equal(stored.res.headers['content-type'], file.mimeType, 'stored with the file\'s type');

  // The page shows the app's JSON: the callback it received, verified,
  // and says the app heard of the upload by OSS's callback.
  assert.equal(await page.getAttribute('#result', 'data-via'), 'callback');
  assert.match(await page.textContent('#result-via'), /^callback: /);
  const shown = JSON.parse(await page.textContent('#callback'));
  assert.equal(shown.ok, true);
  assert.equal(shown.callback.verified, 'true');
  assert.equal(shown.callback.fields.object, key);
  assert.equal(shown.callback.fields.size, String(file.buffer.length));
  assert.equal(shown.callback.fields.bucket, 'sandbox');
  assert.equal(shown.callback.fields.mimeType, file.mimeType);

  // And the app recorded it.
  const recorded = (await callbacks(sb)).filter((c) => c.fields.object === key);
  assert.equal(recorded.length, 1, 'the demo app recorded the callback once');
  assert.equal(recorded[0].verified, 'true');
  return key;
}

function fileOf(name, mimeType, size) {
  return { name, mimeType, buffer: randomBytes(size) };
}

test('PostObject V4 upload of a real file', async () => {
  const file = fileOf('photo.png', 'image/png', 150 * 1024);
  const { page } = await upload(sandbox, 'post-object', { file, mode: 'post' });
  await expectUploaded(sandbox, page, file);
  await page.close();
});

test('presigned PUT upload', async () => {
  const file = fileOf('report.pdf', 'application/pdf', 80 * 1024);
  const { page } = await upload(sandbox, 'presigned-put', { file, mode: 'presign' });
  await expectUploaded(sandbox, page, file);
  await page.close();
});

test('STS + ali-oss put', async () => {
  const file = fileOf('notes.txt', 'text/plain', 20 * 1024);
  const { page } = await upload(sandbox, 'sts-put', { file, mode: 'sts' });
  await expectUploaded(sandbox, page, file);
  await page.close();
});

test('STS + ali-oss multipartUpload with credential refresh', async () => {
  const file = fileOf('movie.mp4', 'video/mp4', 350 * 1024);
  const { page, stsRequests } = await upload(sandbox, 'sts-multipart', {
    file, mode: 'sts',
    advanced: { 'multipart-threshold': 102400, 'part-size': 102400, 'sts-refresh': 1 },
  });
  const key = await expectUploaded(sandbox, page, file);
  const refreshes = Number(await page.textContent('#sts-refreshes'));
  assert.ok(refreshes >= 3, `ali-oss refreshed its credentials ${refreshes} times, want at least one per part`);
  assert.equal(stsRequests.length, refreshes + 1, 'each refresh called the STS route');
  const meta = await reader(sandbox).head(key);
  assert.match(meta.res.headers.etag, /-4"$/, 'a 4-part multipart object');
  await page.close();
});

async function expectRefused(sb, page, pattern) {
  assert.equal(await page.getAttribute('#status', 'data-state'), 'error');
  assert.ok(await page.isVisible('#error'));
  const message = await page.textContent('#error');
  assert.match(message, pattern);
  assert.ok(!/undefined|\[object/.test(message), `a readable message: ${message}`);
  assert.ok(await page.isHidden('#result'));
}

test('a file over max_size is refused, and nothing is stored', async () => {
  const before = await storedKeys(sandbox);
  const callsBefore = (await callbacks(sandbox)).length;
  const file = fileOf('huge.png', 'image/png', 1536 * 1024);
  for (const mode of ['post', 'presign']) {
    const { page } = await upload(sandbox, `refused-too-large-${mode}`, { file, mode });
    await expectRefused(sandbox, page, /exceeds max_size/);
    await page.close();
  }
  assert.deepEqual(await storedKeys(sandbox), before);
  assert.equal((await callbacks(sandbox)).length, callsBefore);
});

test('a type outside allow_types is refused, and nothing is stored', async () => {
  const before = await storedKeys(sandbox);
  const file = { name: 'page.html', mimeType: 'text/html', buffer: Buffer.from('<h1>hi</h1>') };
  const { page } = await upload(sandbox, 'refused-type', { file, mode: 'post' });
  await expectRefused(sandbox, page, /text\/html.*not in allow_types/);
  await page.close();
  assert.deepEqual(await storedKeys(sandbox), before);
});

test('an expired policy is refused by OSS, and nothing is stored', async () => {
  const sb = await startSandbox({ expires: '1s', 'access-key-id': keyId, 'access-key-secret': keySecret });
  try {
    const file = fileOf('late.png', 'image/png', 4096);
    const { page } = await upload(sb, 'refused-expired-policy', { file, mode: 'post', advanced: { delay: 2.5 } });
    await expectRefused(sb, page, /OSS refused the upload \(403\): AccessDenied: Invalid according to Policy: Policy expired/);
    await page.close();
    assert.deepEqual(await storedKeys(sb), []);
    assert.equal((await callbacks(sb)).length, 0);
  } finally {
    await sb.stop();
  }
});

test('the object list shows an upload, and its link opens the same bytes', async () => {
  const file = { name: 'listed.txt', mimeType: 'text/plain', buffer: Buffer.from(randomBytes(3000).toString('base64')) };
  const { page } = await upload(sandbox, 'object-list-upload', { file, mode: 'post' });
  const key = await expectUploaded(sandbox, page, file);

  // The banner says where ali-oss came from: the tests pass --ali-oss-js.
  assert.equal(await page.getAttribute('#ali-oss-source', 'data-source'), 'flag');
  assert.match(await page.textContent('#ali-oss-source'), /--ali-oss-js/);

  const row = page.locator(`#objects tr[data-key="${key}"]`);
  await row.waitFor();
  assert.equal(await row.locator('td.size').textContent(), `${file.buffer.length} bytes`);
  assert.equal(await row.locator('td.type').textContent(), file.mimeType);
  await row.scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(artifacts, 'object-list.png'), fullPage: true });

  const link = row.locator('a');
  assert.equal(await link.textContent(), key);
  const href = new URL(await link.getAttribute('href'), sandbox.pageURL).href;
  const context = page.context();
  const responded = context.waitForEvent('response', (r) => r.url() === href);
  const opened = context.waitForEvent('page');
  await link.click();
  const [response, tab] = await Promise.all([responded, opened]);
  assert.equal(response.status(), 200);
  assert.equal(response.headers()['content-type'], file.mimeType);
  assert.ok(Buffer.compare(await response.body(), file.buffer) === 0, 'the link serves the stored bytes');
  await tab.waitForLoadState();
  assert.equal(await tab.textContent('body'), file.buffer.toString());
  await tab.screenshot({ path: path.join(artifacts, 'object-opened.png') });
  await tab.close();
  await page.close();
});

// With the demo app paused, its callback route answers 503; Caddy answers
// OSS "queued" for it and delivers the callback once the app is resumed,
// with the same Idempotency-Key on every attempt. The page says so, then
// says after how many attempts the callback arrived.
test('a callback queued while the app is paused is delivered after it resumes', async () => {
  const page = await browser.newPage();
  page.on('pageerror', (err) => console.error('page error (queued):', err));
  try {
    await page.goto(`${sandbox.pageURL}/`);
    await page.waitForSelector('#app-section[data-paused=false]');
    await page.click('#app-toggle');
    await page.waitForSelector('#app-section[data-paused=true]');
    assert.equal(await page.textContent('#app-toggle'), 'Resume the app');
    assert.deepEqual(await (await fetch(`${sandbox.pageURL}/demo/state`)).json(), { paused: true });

    const file = fileOf('queued.png', 'image/png', 8 * 1024);
    await page.setInputFiles('#file', file);
    await page.check('#mode-post');
    await page.click('#upload');
    await page.waitForSelector('#status:is([data-state=queued], [data-state=ok], [data-state=error])', { timeout: 60_000 });
    await page.screenshot({ path: path.join(artifacts, 'queued-app-paused.png'), fullPage: true });
    const status = await page.textContent('#status');
    const error = await page.isVisible('#error') ? await page.textContent('#error') : '';
    assert.equal(await page.getAttribute('#status', 'data-state'), 'queued', `${status} ${error}`);
    assert.match(status, /^Queued: Caddy will deliver the callback when the app is back/);

    // The uploader got Caddy's "queued" answer through OSS; the object is
    // stored and the paused app recorded nothing.
    const answer = JSON.parse(await page.textContent('#callback'));
    assert.equal(answer.status, 'queued');
    assert.match(answer.idempotency_key, /^[0-9a-f]+$/);
    const key = await page.textContent('#result-key');
    const stored = await reader(sandbox).get(key);
    assert.ok(Buffer.compare(stored.content, file.buffer) === 0, 'stored bytes differ from the file');
    assert.equal((await callbacks(sandbox)).filter((c) => c.fields.object === key).length, 0);

    // Let Caddy retry at least once against the paused app, then resume.
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(await page.getAttribute('#status', 'data-state'), 'queued');
    await page.click('#app-toggle');
    await page.waitForSelector('#app-section[data-paused=false]');
    await page.waitForSelector('#status[data-state=ok]', { timeout: 60_000 });
    await page.screenshot({ path: path.join(artifacts, 'queued-delivered.png'), fullPage: true });

    const delivered = (await page.textContent('#status')).match(/^Delivered after (\d+) attempts\.$/);
    assert.ok(delivered, await page.textContent('#status'));
    const attempts = Number(delivered[1]);
    assert.ok(attempts >= 2, `delivered after ${attempts} attempts, want the refused ones counted`);
    const recorded = (await callbacks(sandbox)).filter((c) => c.fields.object === key);
    assert.equal(recorded.length, 1, 'the demo app recorded the callback once');
    assert.equal(recorded[0].verified, 'true');
    assert.equal(recorded[0].idempotencyKey, answer.idempotency_key);
    assert.equal(recorded[0].attempts, attempts);
    assert.deepEqual(JSON.parse(await page.textContent('#delivered-callback')), recorded[0]);
  } finally {
    await fetch(`${sandbox.pageURL}/demo/resume`, { method: 'POST' });
    await page.close();
  }
});
