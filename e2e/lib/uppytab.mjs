// The Uppy tab as the browser tests drive it: reading the emulator's
// bucket, opening the tab in Chromium as a user, uploading through the
// Dashboard and checking what was stored, recorded and shown. uppyTab binds
// the helpers to one bundle's sandbox (ctx.sandbox) and browser
// (ctx.browser), which the test's before hooks set.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import OSS from 'ali-oss';

export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

export function uppyTab(ctx, { bundle, artifacts, keyId, keySecret, uppyPath }) {
  // reader reads the emulator's bucket with the account's key (path-style).
  function reader() {
    return new OSS({
      region: 'oss-cn-hangzhou', endpoint: ctx.sandbox.ossEndpoint, bucket: 'sandbox',
      accessKeyId: keyId, accessKeySecret: keySecret,
    });
  }

  async function storedKeys() {
    const res = await reader().list({ prefix: 'uploads/', 'max-keys': 1000 });
    return (res.objects || []).map((o) => o.name).sort();
  }

  // ossParts lists the part numbers OSS holds for an unfinished upload
  // (ali-oss gives one part as an object, several as an array).
  async function ossParts(key, ossUploadId) {
    const res = await reader().listParts(key, ossUploadId);
    return [].concat(res.parts || []).map((p) => Number(p.PartNumber));
  }

  async function recordedCallbacks() {
    return (await fetch(`${ctx.sandbox.pageURL}/demo/callbacks`)).json();
  }

  // expectGone checks that OSS has no object under key and no multipart
  // upload with OSS's id ossUploadId (when there was one).
  async function expectGone(key, ossUploadId) {
    await assert.rejects(reader().head(key), (err) => err.status === 404, `no object ${key}`);
    if (ossUploadId) {
      await assert.rejects(reader().listParts(key, ossUploadId), (err) => err.status === 404 && err.code === 'NoSuchUpload',
        `no unfinished multipart upload ${ossUploadId} of ${key}`);
    }
  }

  // openUppy opens the Uppy tab as user (the sandbox_user cookie; none:
  // guest) and records the Uppy routes' answers and the part PUTs.
  async function openUppy(user, { partDelayMs = 0 } = {}) {
    const context = await ctx.browser.newContext({ viewport: { width: 1100, height: 900 } });
    if (user) await context.addCookies([{ name: 'sandbox_user', value: user, url: ctx.sandbox.pageURL }]);
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error('page error:', err));
    const routes = []; // {method, path, query, status, body} of each Uppy route call
    const partPuts = []; // {partNumber, at} of each part PUT sent
    const pending = [];
    page.on('response', (res) => {
      const url = new URL(res.url());
      if (!url.pathname.startsWith(`${uppyPath}/s3/`)) return;
      const entry = { method: res.request().method(), path: url.pathname.slice(`${uppyPath}/s3`.length), query: url.searchParams, status: res.status() };
      routes.push(entry);
      pending.push(res.json().then((b) => { entry.body = b; }, () => {}));
    });
    page.on('request', (req) => {
      const url = new URL(req.url());
      if (req.method() === 'PUT' && url.searchParams.has('partNumber')) {
        partPuts.push({ partNumber: Number(url.searchParams.get('partNumber')), uploadId: url.searchParams.get('uploadId'), at: Date.now() });
      }
    });
    if (partDelayMs > 0) {
      // Slow each part PUT, so that an upload is still going when the test
      // acts on it.
      await page.route((url) => url.searchParams.has('partNumber'), async (route) => {
        if (route.request().method() === 'PUT') await new Promise((r) => setTimeout(r, partDelayMs));
        try {
          await route.continue();
        } catch {
          // Uppy aborted the PUT (pause) while it was held
        }
      });
    }
    await page.goto(`${ctx.sandbox.pageURL}/#uppy`);
    await page.waitForSelector('#uppy-status[data-state=ready]', { timeout: 30_000 });
    assert.deepEqual(await loadedVersions(page), bundle.versions, `the page runs ${bundle.name}`);
    const settled = () => Promise.all(pending.splice(0));
    return { page, context, routes, partPuts, settled };
  }

  // loadedVersions reads the releases of Uppy's Core, Dashboard and AwsS3
  // the page runs.
  function loadedVersions(page) {
    return page.evaluate(() => {
      const uppy = window.sandboxUppy;
      return {
        core: uppy.constructor.VERSION,
        dashboard: uppy.getPlugin('Dashboard')?.constructor.VERSION,
        awsS3: uppy.getPlugin('AwsS3')?.constructor.VERSION,
      };
    });
  }

  async function addAndUpload(page, file) {
    await page.setInputFiles('#uppy-dashboard input.uppy-Dashboard-input >> nth=0', file);
    await page.click('#uppy-dashboard .uppy-StatusBar-actionBtn--upload');
  }

  // partsDone waits until Uppy has sent n parts.
  function partsDone(page, n) {
    return page.waitForFunction((want) => Number(document.getElementById('uppy-status').dataset.partsDone || 0) >= want,
      n, { timeout: 60_000 });
  }

  async function outcome(page, name) {
    await page.waitForSelector('#uppy-status[data-state=ok], #uppy-status[data-state=error]', { timeout: 90_000 });
    await page.screenshot({ path: path.join(artifacts, `uppy-${bundle.slug}-${name}.png`), fullPage: true });
    return page.getAttribute('#uppy-status', 'data-state');
  }

  // expectUploaded checks the page's result for file and the stored bytes,
  // and returns the result's key.
  async function expectUploaded(page, file, { user = 'guest', method, parts = 0 }) {
    const status = await page.textContent('#uppy-status');
    const error = await page.isVisible('#uppy-error') ? await page.textContent('#uppy-error') : '';
    assert.equal(await page.getAttribute('#uppy-status', 'data-state'), 'ok', `${status} ${error}`);
    const item = page.locator('#uppy-results li').first();
    const key = await item.getAttribute('data-key');
    assert.ok(key.startsWith(`uploads/${user}/`), `key ${key} below uploads/${user}/`);
    assert.equal(await item.getAttribute('data-method'), method);
    assert.equal(await item.getAttribute('data-parts'), String(parts));
    assert.equal(await item.getAttribute('data-size'), String(file.buffer.length));

    const stored = await reader().get(key);
    assert.equal(sha256(stored.content), sha256(file.buffer), 'stored bytes are the file\'s');
    assert.equal(stored.res.headers['content-type'], file.mimeType, 'stored with the file\'s type');
    const etag = (await reader().head(key)).res.headers.etag;
    if (parts > 0) assert.match(etag, new RegExp(`-${parts}"$`), `a ${parts}-part object`);

    // Uppy reports where the object is: complete's location for multipart,
    // the params url + key for PostObject.
    const location = new URL(await item.getAttribute('data-location'));
    assert.ok(decodeURIComponent(location.pathname).endsWith(`/${key}`), `location ${location} names ${key}`);
    assert.equal(decodeURIComponent(location.pathname), `/${key}`, `location ${location} is the object's URL`);

    // The page's link opens the stored bytes.
    const href = await item.locator('a.object-link').getAttribute('href');
    const served = Buffer.from(await (await fetch(new URL(href, ctx.sandbox.pageURL))).arrayBuffer());
    assert.equal(sha256(served), sha256(file.buffer), 'the object link serves the stored bytes');

    // The demo app recorded one verified callback for the upload, and the
    // page shows it (multipart: as the complete route relayed it).
    const recorded = (await recordedCallbacks()).filter((c) => c.fields.object === key);
    assert.equal(recorded.length, 1, 'one callback recorded');
    assert.equal(recorded[0].verified, 'true');
    assert.equal(recorded[0].fields.size, String(file.buffer.length));
    const shown = JSON.parse(await item.locator('pre.callback').textContent());
    if (method === 'multipart') {
      assert.equal(await item.getAttribute('data-callback'), 'complete');
      assert.equal(shown.ok, true);
      assert.equal(shown.callback.fields.object, key);
    } else {
      assert.equal(await item.getAttribute('data-callback'), 'recorded');
      assert.equal(shown.fields.object, key);
    }
    return key;
  }

  // asUser calls an Uppy route with the sandbox_user cookie of user.
  async function asUser(user, method, route, body) {
    const res = await fetch(`${ctx.sandbox.pageURL}${uppyPath}/s3${route}`, {
      method,
      headers: { Cookie: `sandbox_user=${user}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { /* checked by the caller */ }
    return { status: res.status, type: res.headers.get('content-type') || '', text, json };
  }

  return { reader, storedKeys, ossParts, recordedCallbacks, expectGone, openUppy, loadedVersions, addAndUpload, partsDone, outcome, expectUploaded, asUser };
}
