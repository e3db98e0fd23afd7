// Alibaba's sample browser clients for presigned PUT, unchanged, in
// Chromium against the sandbox with presign_format url: they fetch the
// presign route with fetch()'s default headers, read response.text() as
// the URL, then PUT the file with Content-Type: file.type. One sends
// ?filename=<name> (the type comes from the extension), the other sends
// nothing (its server signs image/png: default_type image/png here). The
// bytes and type the emulator stores are the file's, and the demo app got
// the verified callback. A file over max_size is deleted after the fact:
// the PUT answers 203 CallbackFailed and nothing is kept.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startSandbox } from '../lib/sandbox.mjs';
import { launchChromium } from '../lib/browser.mjs';

const maxSize = 100 * 1024;

let byName; // presign_format url, types from the filename's extension
let pngDefault; // presign_format url, default_type image/png
let browser;

before(async () => {
  [byName, pngDefault] = await Promise.all([
    startSandbox({ 'presign-format': 'url', 'max-size': `${maxSize}B` }),
    startSandbox({ 'presign-format': 'url', 'default-type': 'image/png', 'max-size': `${maxSize}B` }),
  ]);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await byName?.stop();
  await pngDefault?.stop();
});

// The samples' code, as they run it: the file comes from an <input
// type=file>, the presign route is fetched with default headers.
async function runSample(page, { sendFilename }) {
  return page.evaluate(async (sendFilename) => {
    const file = document.querySelector('#file').files[0];
    const presign = await fetch(sendFilename ? `/oss/presign?filename=${encodeURIComponent(file.name)}` : '/oss/presign');
    const url = await presign.text();
    const out = { presignStatus: presign.status, presignType: presign.headers.get('content-type'), url };
    if (!presign.ok) return out;
    const put = await fetch(url, { method: 'PUT', headers: { 'Content-Type': file.type }, body: file });
    out.putStatus = put.status;
    out.putBody = await put.text();
    return out;
  }, sendFilename);
}

async function openWithFile(sb, file) {
  const page = await browser.newPage();
  page.on('pageerror', (err) => console.error('page error:', err));
  await page.goto(`${sb.pageURL}/`);
  await page.setInputFiles('#file', file);
  return page;
}

function keyOf(url) {
  return new URL(url).pathname.slice(1).split('/').map(decodeURIComponent).join('/');
}

async function stored(sb, key) {
  const list = await (await fetch(`${sb.pageURL}/demo/objects`)).json();
  return list.objects.find((o) => o.key === key);
}

async function callbacksFor(sb, key) {
  const all = await (await fetch(`${sb.pageURL}/demo/callbacks`)).json();
  return all.filter((c) => c.fields.object === key);
}

async function expectStored(sb, result, file) {
  assert.equal(result.presignStatus, 200, result.url);
  assert.equal(result.presignType, 'text/plain; charset=utf-8');
  assert.match(result.url, /^http:\/\/.*[?&]x-oss-signature=/, 'the answer is the bare presigned URL');
  assert.equal(result.putStatus, 200, result.putBody);
  assert.equal(JSON.parse(result.putBody).ok, true, 'the PUT answers the demo app\'s JSON');
  const key = keyOf(result.url);
  const obj = await stored(sb, key);
  assert.ok(obj, `${key} is stored`);
  assert.equal(obj.type, file.mimeType, 'stored with the file\'s type');
  assert.equal(obj.size, file.buffer.length);
  const bytes = Buffer.from(await (await fetch(`${sb.pageURL}${obj.url}`)).arrayBuffer());
  assert.ok(Buffer.compare(bytes, file.buffer) === 0, 'stored bytes are the file\'s');
  const cbs = await callbacksFor(sb, key);
  assert.equal(cbs.length, 1, 'the demo app got the callback once');
  assert.equal(cbs[0].verified, 'true');
  assert.equal(cbs[0].fields.mimeType, file.mimeType);
}

function fileOf(name, mimeType, size) {
  return { name, mimeType, buffer: randomBytes(size) };
}

for (const file of [
  fileOf('photo.png', 'image/png', 30 * 1024),
  fileOf('Scan.JPG', 'image/jpeg', 20 * 1024),
  fileOf('report.pdf', 'application/pdf', 40 * 1024),
  fileOf('notes.txt', 'text/plain', 5 * 1024),
]) {
  test(`sample with ?filename=: ${file.name} (${file.mimeType})`, async () => {
    const page = await openWithFile(byName, file);
    await expectStored(byName, await runSample(page, { sendFilename: true }), file);
    await page.close();
  });
}

test('sample without a filename, server signing image/png (default_type)', async () => {
  const file = fileOf('picture.png', 'image/png', 25 * 1024);
  const page = await openWithFile(pngDefault, file);
  await expectStored(pngDefault, await runSample(page, { sendFilename: false }), file);
  await page.close();
});

test('sample without a filename and no default_type: application/octet-stream is not allowed, said before any upload', async () => {
  const file = fileOf('picture.png', 'image/png', 1024);
  const page = await openWithFile(byName, file);
  const result = await runSample(page, { sendFilename: false });
  assert.equal(result.presignStatus, 400);
  assert.match(result.url, /application\/octet-stream.*not in allow_types/);
  await page.close();
});

test('the sandbox page asking for JSON still gets JSON with presign_format url', async () => {
  const page = await openWithFile(byName, fileOf('a.png', 'image/png', 10));
  const answer = await page.evaluate(async () => {
    const res = await fetch('/oss/presign?filename=a.png', { headers: { Accept: 'application/json' } });
    return { type: res.headers.get('content-type'), body: await res.json() };
  });
  assert.match(answer.type, /^application\/json/);
  assert.equal(answer.body.method, 'PUT');
  assert.equal(answer.body.headers['Content-Type'], 'image/png');
  await page.close();
});

for (const size of [maxSize + 1, 3 * maxSize]) {
  test(`sample PUT of ${size} bytes, over max_size: 203 CallbackFailed, deleted, the app hears nothing`, async () => {
    const file = fileOf('big.png', 'image/png', size);
    const page = await openWithFile(byName, file);
    const result = await runSample(page, { sendFilename: true });
    assert.equal(result.presignStatus, 200);
    assert.equal(result.putStatus, 203, result.putBody);
    assert.match(result.putBody, /<Code>CallbackFailed<\/Code>/);
    assert.match(result.putBody, /Error status : 413\./);
    const key = keyOf(result.url);
    assert.equal(await stored(byName, key), undefined, 'the oversize object is gone');
    assert.equal((await callbacksFor(byName, key)).length, 0, 'the demo app heard nothing');
    await page.close();
  });
}

test('at exactly max_size the sample upload is kept', async () => {
  const file = fileOf('edge.png', 'image/png', maxSize);
  const page = await openWithFile(byName, file);
  await expectStored(byName, await runSample(page, { sendFilename: true }), file);
  await page.close();
});
