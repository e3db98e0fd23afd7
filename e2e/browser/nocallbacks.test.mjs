// `caddy oss-sandbox --no-callbacks` in Chromium: the emulator calls back
// no loopback address, as OSS never calls back a laptop, and the site asks
// OSS for no callback (callback confirm_only); the page confirms each
// upload at /oss/confirm with the token of its signing answer. In every
// mode the page offers (PostObject, presigned PUT, STS with ali-oss put
// and multipartUpload, and the Uppy tab's PostObject form and multipart,
// on Uppy's prebuilt bundle and on the current packages) the stored bytes
// are the file's, the page shows the app's answer and says the app heard
// of the upload by confirm, the page confirmed it once, the demo app
// recorded it exactly once as verified, and the emulator called nothing
// back (GET /demo/oss-callbacks). A confirm the paused app cannot take is
// queued and delivered once it resumes. Screenshots go to
// e2e/artifacts/nocallbacks-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import OSS from 'ali-oss';
import { startSandbox, uppyCurrentDist, uppyDist } from '../lib/sandbox.mjs';
import { launchChromium } from '../lib/browser.mjs';
import { repoRoot } from '../lib/ossemu.mjs';

const artifacts = path.join(repoRoot, 'e2e', 'artifacts');
const keyId = 'nocallbacks-test-ak';
const keySecret = 'nocallbacks-test-secret';
const MiB = 1024 * 1024;
const confirmPath = '/oss/confirm';
// The routes whose answers carry confirm (and Uppy's complete).
const signingPaths = ['/oss/post-policy', '/oss/presign', '/oss/sts', '/oss/uppy/s3/params'];

let browser;
// Each sandbox, by bundle slug, and the keys uploaded through it.
const sandboxes = {};

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  browser = await launchChromium();
  for (const [slug, dist] of [['6.0.1', uppyDist], ['current', uppyCurrentDist]]) {
    const sb = await startSandbox({
      'no-callbacks': true, 'uppy-dist': dist, 'max-size': '20MB', 'access-key-id': keyId, 'access-key-secret': keySecret,
    });
    sandboxes[slug] = { sb, keys: [] };
  }
});

after(async () => {
  await browser?.close();
  for (const { sb } of Object.values(sandboxes)) await sb.stop();
});

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
const fileOf = (name, mimeType, size) => ({ name, mimeType, buffer: randomBytes(size) });

function reader(sb) {
  return new OSS({
    region: 'oss-cn-hangzhou', endpoint: sb.ossEndpoint, bucket: 'sandbox', accessKeyId: keyId, accessKeySecret: keySecret,
  });
}

const getJSON = async (sb, route) => (await fetch(`${sb.pageURL}${route}`)).json();

// watch records, on a page, the POSTs to the confirm route and the
// signing answers, whose confirm is checked and which ask OSS for no
// callback.
function watch(page) {
  const confirms = [];
  const signed = [];
  const pending = [];
  page.on('request', (req) => {
    if (new URL(req.url()).pathname === confirmPath) confirms.push({ method: req.method(), body: JSON.parse(req.postData()) });
  });
  page.on('response', (res) => {
    const route = new URL(res.url()).pathname;
    if (signingPaths.includes(route) || (route.startsWith('/oss/uppy/s3/multipart/') && route.endsWith('/complete'))) {
      pending.push(res.json().then((body) => signed.push({ route, body })));
    }
  });
  page.on('pageerror', (err) => console.error('page error:', err));
  return { confirms, signed, settled: () => Promise.all(pending.splice(0)) };
}

// expectSignedForConfirm checks that every signing answer (Uppy's
// complete included) carried the confirm route and a token, and asked OSS
// for no callback.
function expectSignedForConfirm(signed) {
  assert.ok(signed.length > 0, 'a signing answer');
  for (const { route, body } of signed) {
    const confirm = route === '/oss/sts' ? body.Confirm : body.confirm;
    assert.equal(confirm?.url, confirmPath, `${route} carries the confirm route`);
    assert.ok(confirm.token, `${route} carries a token`);
    assert.equal(body.callback ?? body.Callback, undefined, `${route} asks for no callback`);
    const fields = Object.keys(body.fields || {});
    assert.ok(!fields.some((f) => f === 'callback' || f.startsWith('x:')), `${route}: no callback fields (${fields})`);
    if (body.url) assert.ok(!new URL(body.url).searchParams.has('callback'), `${route}: no callback in the URL`);
  }
}

// expectOnce checks that the demo app recorded the upload of key once,
// verified, with the file's size, and that the emulator called nothing
// back.
async function expectOnce(sb, key, file) {
  const recorded = (await getJSON(sb, '/demo/callbacks')).filter((c) => c.fields.object === key);
  assert.equal(recorded.length, 1, `the demo app recorded ${key} once`);
  assert.equal(recorded[0].verified, 'true');
  assert.equal(recorded[0].fields.size, String(file.buffer.length));
  assert.deepEqual(await getJSON(sb, '/demo/oss-callbacks'), [], 'the emulator called nothing back');
  const stored = await reader(sb).get(key);
  assert.equal(sha256(stored.content), sha256(file.buffer), 'stored bytes are the file\'s');
}

for (const [mode, file, advanced] of [
  ['post', fileOf('photo.png', 'image/png', 150 * 1024)],
  ['presign', fileOf('report.pdf', 'application/pdf', 80 * 1024)],
  ['sts', fileOf('notes.txt', 'text/plain', 20 * 1024)],
  ['sts', fileOf('movie.mp4', 'video/mp4', 350 * 1024), { 'multipart-threshold': 102400, 'part-size': 102400 }],
]) {
  const name = `${mode}${advanced ? '-multipart' : ''}`;
  test(`upload form, ${name}: confirmed by the page, received once by the app, never called back`, { timeout: 90_000 }, async () => {
    const { sb, keys } = sandboxes['6.0.1'];
    const page = await browser.newPage();
    const { confirms, signed, settled } = watch(page);
    await page.goto(`${sb.pageURL}/`);
    assert.equal(await page.getAttribute('#lead', 'data-confirm'), confirmPath, 'the page says uploads are confirmed');
    await page.waitForFunction(() => typeof OSS !== 'undefined');
    await page.setInputFiles('#file', file);
    await page.check(`#mode-${mode}`);
    if (advanced) {
      await page.click('summary');
      for (const [id, value] of Object.entries(advanced)) await page.fill(`#${id}`, String(value));
    }
    await page.click('#upload');
    await page.waitForSelector('#status:is([data-state=ok], [data-state=error], [data-state=queued])', { timeout: 60_000 });
    await page.screenshot({ path: path.join(artifacts, `nocallbacks-form-${name}.png`), fullPage: true });
    const error = await page.isVisible('#error') ? await page.textContent('#error') : '';
    assert.equal(await page.getAttribute('#status', 'data-state'), 'ok', `${await page.textContent('#status')} ${error}`);
    await settled();
    expectSignedForConfirm(signed);

    const key = await page.textContent('#result-key');
    keys.push(key);
    assert.equal(await page.getAttribute('#result', 'data-via'), 'confirm');
    assert.match(await page.textContent('#result-via'), /^confirm: /);
    assert.match(await page.textContent('#callback-label'), /confirm/);
    const shown = JSON.parse(await page.textContent('#callback'));
    assert.equal(shown.ok, true, 'the page shows the app\'s answer');
    assert.equal(shown.callback.verified, 'true');
    assert.equal(shown.callback.fields.object, key);
    assert.equal(shown.callback.fields.mimeType, file.mimeType);
    assert.deepEqual(confirms.map((c) => c.method), ['POST'], 'the page confirmed once');
    assert.equal(confirms[0].body.key, key);
    assert.deepEqual(Object.keys(confirms[0].body).sort(), ['key', 'token']);
    if (advanced) assert.match((await reader(sb).head(key)).res.headers.etag, /-4"$/, 'a 4-part multipart object');
    await expectOnce(sb, key, file);
    await page.close();
  });
}

// With the demo app paused, Caddy answers the page's confirm "queued" and
// delivers the upload once the app is back: still once.
test('upload form: a confirm the paused app cannot take is queued, then delivered once', { timeout: 90_000 }, async () => {
  const { sb, keys } = sandboxes['6.0.1'];
  const page = await browser.newPage();
  const { confirms } = watch(page);
  try {
    await page.goto(`${sb.pageURL}/`);
    await page.click('#app-toggle');
    await page.waitForSelector('#app-section[data-paused=true]');
    const file = fileOf('queued.png', 'image/png', 8 * 1024);
    await page.setInputFiles('#file', file);
    await page.check('#mode-post');
    await page.click('#upload');
    await page.waitForSelector('#status:is([data-state=queued], [data-state=ok], [data-state=error])', { timeout: 60_000 });
    await page.screenshot({ path: path.join(artifacts, 'nocallbacks-queued.png'), fullPage: true });
    assert.equal(await page.getAttribute('#status', 'data-state'), 'queued', await page.textContent('#status'));
    assert.equal(await page.getAttribute('#result', 'data-via'), 'confirm');
    assert.match(await page.textContent('#callback-label'), /answer to the confirm: the app did not take the upload/);
    const answer = JSON.parse(await page.textContent('#callback'));
    assert.equal(answer.status, 'queued');
    const key = await page.textContent('#result-key');
    keys.push(key);

    await page.click('#app-toggle');
    await page.waitForSelector('#app-section[data-paused=false]');
    await page.waitForSelector('#status[data-state=ok]', { timeout: 60_000 });
    assert.match(await page.textContent('#status'), /^Delivered after \d+ attempts?\.$/);
    assert.equal(confirms.length, 1, 'the page confirmed once');
    await expectOnce(sb, key, file);
    const [recorded] = (await getJSON(sb, '/demo/callbacks')).filter((c) => c.fields.object === key);
    assert.equal(recorded.idempotencyKey, answer.idempotency_key);
  } finally {
    await fetch(`${sb.pageURL}/demo/resume`, { method: 'POST' });
    await page.close();
  }
});

for (const slug of ['6.0.1', 'current']) {
  for (const [method, file] of [
    ['post', fileOf('small.png', 'image/png', 300 * 1024)],
    ['multipart', fileOf('clip.mp4', 'video/mp4', 6 * MiB)], // 5 + 1 MiB
  ]) {
    test(`Uppy tab (${slug}), ${method}: confirmed by the tab, received once by the app, never called back`, { timeout: 120_000 }, async () => {
      const { sb, keys } = sandboxes[slug];
      const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
      const page = await context.newPage();
      const { confirms, signed, settled } = watch(page);
      await page.goto(`${sb.pageURL}/#uppy`);
      await page.waitForSelector('#uppy-status[data-state=ready]', { timeout: 30_000 });
      await page.setInputFiles('#uppy-dashboard input.uppy-Dashboard-input >> nth=0', file);
      await page.click('#uppy-dashboard .uppy-StatusBar-actionBtn--upload');
      await page.waitForSelector('#uppy-status:is([data-state=ok], [data-state=error])', { timeout: 90_000 });
      await page.screenshot({ path: path.join(artifacts, `nocallbacks-uppy-${slug}-${method}.png`), fullPage: true });
      const error = await page.isVisible('#uppy-error') ? await page.textContent('#uppy-error') : '';
      assert.equal(await page.getAttribute('#uppy-status', 'data-state'), 'ok', `${await page.textContent('#uppy-status')} ${error}`);
      await settled();

      const item = page.locator('#uppy-results li').first();
      const key = await item.getAttribute('data-key');
      keys.push(key);
      assert.equal(await item.getAttribute('data-method'), method);
      assert.equal(await item.getAttribute('data-via'), 'confirm');
      assert.equal(await item.getAttribute('data-callback'), 'confirm');
      assert.match(await item.locator('p.via').textContent(), /by confirm/);
      const shown = JSON.parse(await item.locator('pre.callback').textContent());
      assert.equal(shown.ok, true, 'the tab shows the app\'s answer');
      assert.equal(shown.callback.verified, 'true');
      assert.equal(shown.callback.fields.object, key);
      assert.deepEqual(confirms.map((c) => [c.method, c.body.key]), [['POST', key]], 'the tab confirmed once');
      // The token of the answer that signed the upload: params for a
      // form, complete for multipart.
      expectSignedForConfirm(signed);
      assert.deepEqual(signed.map((s) => s.route.endsWith('/complete') ? 'complete' : 'params'), [method === 'post' ? 'params' : 'complete']);
      assert.equal(signed[0].body.confirm.token, confirms[0].body.token, 'the token of the signing answer');
      await expectOnce(sb, key, file);
      await context.close();
    });
  }
}

test('every upload reached the demo app exactly once, and the emulator called nothing back', async () => {
  for (const [slug, { sb, keys }] of Object.entries(sandboxes)) {
    const recorded = (await getJSON(sb, '/demo/callbacks')).map((c) => c.fields.object).sort();
    assert.deepEqual(recorded, [...keys].sort(), `${slug}: one record per upload`);
    assert.ok(recorded.length >= (slug === '6.0.1' ? 7 : 2), `${slug}: ${recorded.length} uploads`);
    assert.deepEqual(await getJSON(sb, '/demo/oss-callbacks'), [], `${slug}: the emulator called nothing back`);
  }
});
