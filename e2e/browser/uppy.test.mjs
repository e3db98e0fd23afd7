// Stock Uppy (Dashboard and @uppy/aws-s3, configured only with
// oss_upload's uppy_path as its Companion endpoint) in the sandbox's Uppy
// tab, driven through its real UI in Chromium: files added through the
// Dashboard's file input, Upload, Pause and Resume clicked. Every test runs
// on two bundles, each in its own sandbox: Uppy's prebuilt 6.0.1 bundle
// (what the page loads from the CDN) and a bundle of the pinned current
// @uppy packages (`npm run build:uppy`). Every upload's stored bytes are
// compared with the file's by SHA-256. Uploads over max_size are refused
// on both paths and leave neither an object nor an unfinished multipart
// upload; another user's requests on an upload in progress are refused
// with 403 and the upload goes on. A type outside allow_types is refused
// before any byte is sent.
// Screenshots go to e2e/artifacts/uppy-<bundle>-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { startSandbox, uppyCurrentDist, uppyDist } from '../lib/sandbox.mjs';
import { uppyTab } from '../lib/uppytab.mjs';
import { launchChromium } from '../lib/browser.mjs';
import { repoRoot } from '../lib/ossemu.mjs';

const artifacts = path.join(repoRoot, 'e2e', 'artifacts');
const keyId = 'uppy-test-ak';
const keySecret = 'uppy-test-secret';
const MiB = 1024 * 1024;
const uppyPath = '/oss/uppy';
// 20 MB = 19.07 MiB: room for a 16 MiB multipart upload, not for 21 MiB.
const maxSize = '20MB';

// escapePath percent-encodes each segment of an object key as S3 signers
// escape a resource path: RFC 3986 unreserved characters and '/' kept.
const escapePath = (key) => key.split('/')
  .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
  .join('/');

// The two bundles, and what differs between their @uppy/aws-s3 releases.
// Both speak the same Companion routes.
const bundles = [
  {
    name: 'uppy 6.0.1 bundle',
    slug: '6.0.1',
    dist: uppyDist,
    versions: { core: '6.0.1', dashboard: '6.0.0', awsS3: '6.1.0' },
    // @uppy/aws-s3 6.1.0 uses multipart only for files over 5 MiB, whatever
    // shouldUseMultipart answers.
    multipartUpTo5MiB: false,
    // It reports a PostObject's location as the params url and the key
    // joined as they are.
    postLocation: (url, key) => `${url}${key}`,
  },
  {
    name: 'current @uppy packages',
    slug: 'current',
    dist: uppyCurrentDist,
    versions: { core: '6.3.1', dashboard: '6.0.3', awsS3: '6.3.1' },
    // Since 6.2.1 a file of 5 MiB or less may go by multipart, in one part.
    multipartUpTo5MiB: true,
    // Since 6.3.0 the params url's trailing '/' is dropped and the key
    // escaped, '/' kept.
    postLocation: (url, key) => `${url.replace(/\/+$/, '')}/${escapePath(key)}`,
  },
];

let browser;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

function fileOf(name, mimeType, size) {
  return { name, mimeType, buffer: randomBytes(size) };
}

for (const bundle of bundles) uppyTests(bundle);

// uppyTests defines every test for one bundle, against a sandbox of its own.
function uppyTests(bundle) {
  let sandbox;
  const ctx = { get sandbox() { return sandbox; }, get browser() { return browser; } };

  before(async () => {
    assert.ok(existsSync(path.join(bundle.dist, 'uppy.min.mjs')),
      `${bundle.name}: no ${bundle.dist}/uppy.min.mjs (run npm ci and npm run build:uppy in e2e/)`);
    sandbox = await startSandbox({
      'uppy-dist': bundle.dist, 'max-size': maxSize, 'access-key-id': keyId, 'access-key-secret': keySecret,
    });
  });

  after(async () => {
    await sandbox?.stop();
  });

  const { reader, storedKeys, ossParts, recordedCallbacks, expectGone, openUppy, addAndUpload, partsDone, outcome, expectUploaded, asUser } = uppyTab(ctx, { bundle, artifacts, keyId, keySecret, uppyPath });

  test(`${bundle.name}: the page loads it from the sandbox, with its stylesheet`, { timeout: 60_000 }, async () => {
    const { page, context } = await openUppy();
    assert.equal(await page.getAttribute('#uppy-tab', 'data-bundle'), '/uppy/uppy.min.mjs');
    const sheet = await page.evaluate(() => {
      const s = [...document.styleSheets].find((x) => x.href && new URL(x.href).pathname === '/uppy/uppy.min.css');
      return s && { rules: s.cssRules.length, dashboard: [...s.cssRules].some((r) => r.selectorText?.includes('.uppy-Dashboard-inner')) };
    });
    assert.ok(sheet, 'the page links /uppy/uppy.min.css');
    assert.ok(sheet.rules > 100, `the stylesheet has Uppy's rules (${sheet.rules})`);
    assert.ok(sheet.dashboard, 'the stylesheet styles the Dashboard');
    // The Dashboard is drawn with its stylesheet: a bordered box, not
    // unstyled markup.
    const inner = await page.evaluate(() => {
      const el = document.querySelector('#uppy-dashboard .uppy-Dashboard-inner');
      const cs = el && getComputedStyle(el);
      return cs && { position: cs.position, radius: cs.borderTopLeftRadius, height: el.getBoundingClientRect().height };
    });
    assert.ok(inner, 'the Dashboard is on the page');
    assert.equal(inner.position, 'relative');
    assert.notEqual(inner.radius, '0px');
    assert.equal(Math.round(inner.height), 360, 'the Dashboard has the height the tab sets');
    await page.screenshot({ path: path.join(artifacts, `uppy-${bundle.slug}-ready.png`), fullPage: true });
    await context.close();
  });

  test(`${bundle.name}: a small file goes in one PostObject form`, { timeout: 120_000 }, async () => {
    const file = fileOf('photo.png', 'image/png', 300 * 1024);
    const { page, context, routes, partPuts, settled } = await openUppy();
    await addAndUpload(page, file);
    await outcome(page, 'postobject');
    await settled();
    const key = await expectUploaded(page, file, { method: 'post' });
    const params = routes.filter((r) => r.path === '/params');
    assert.equal(params.length, 1, 'Uppy asked /s3/params once');
    assert.equal(params[0].body.method, 'POST');
    assert.equal(params[0].body.fields.key, key);
    // Where Uppy says the object is, as its release builds it from the
    // params url and the key. The sandbox's keys (<user>/<random hex>.<ext>)
    // have nothing to escape, so both releases name the same URL here.
    const location = await page.getAttribute('#uppy-results li >> nth=0', 'data-location');
    assert.equal(location, bundle.postLocation(params[0].body.url, key));
    assert.equal(routes.filter((r) => r.path.startsWith('/multipart')).length, 0, 'no multipart route');
    assert.equal(partPuts.length, 0);
    await context.close();
  });

  test(`${bundle.name}: a 3 MiB file over a 1 MiB multipart threshold: ${bundle.multipartUpTo5MiB ? 'multipart in one part' : 'one PostObject form, 5 MiB being the least for multipart'}`, { timeout: 120_000 }, async () => {
    const file = fileOf('clip.mp4', 'video/mp4', 3 * MiB);
    const { page, context, routes, partPuts, settled } = await openUppy('frank');
    await page.fill('#uppy-threshold', '1'); // shouldUseMultipart: over 1 MiB
    await addAndUpload(page, file);
    await outcome(page, 'small-multipart');
    await settled();
    const created = routes.filter((r) => r.method === 'POST' && r.path === '/multipart');
    const params = routes.filter((r) => r.path === '/params');
    if (bundle.multipartUpTo5MiB) {
      const key = await expectUploaded(page, file, { user: 'frank', method: 'multipart', parts: 1 });
      assert.equal(created.length, 1, 'one multipart upload created');
      assert.equal(created[0].body.key, key);
      assert.deepEqual(partPuts.map((p) => p.partNumber), [1]);
      const completed = routes.filter((r) => r.path.endsWith('/complete'));
      assert.equal(completed.length, 1);
      assert.equal(completed[0].status, 200);
      assert.equal(params.length, 0, 'no PostObject');
    } else {
      const key = await expectUploaded(page, file, { user: 'frank', method: 'post' });
      assert.equal(params.length, 1, 'Uppy asked /s3/params once');
      assert.equal(params[0].body.fields.key, key);
      assert.equal(created.length, 0, 'no multipart upload');
      assert.equal(partPuts.length, 0);
    }
    await context.close();
  });

  test(`${bundle.name}: a file of several parts goes by multipart`, { timeout: 120_000 }, async () => {
    const file = fileOf('movie.mp4', 'video/mp4', 12 * MiB); // 5 + 5 + 2 MiB
    const { page, context, routes, partPuts, settled } = await openUppy('alice');
    await addAndUpload(page, file);
    await outcome(page, 'multipart');
    await settled();
    const key = await expectUploaded(page, file, { user: 'alice', method: 'multipart', parts: 3 });
    const created = routes.filter((r) => r.method === 'POST' && r.path === '/multipart');
    assert.equal(created.length, 1);
    assert.equal(created[0].body.key, key);
    assert.deepEqual(partPuts.map((p) => p.partNumber), [1, 2, 3]);
    const completed = routes.filter((r) => r.path.endsWith('/complete'));
    assert.equal(completed.length, 1);
    assert.equal(completed[0].status, 200);
    assert.equal(completed[0].body.key, key);
    assert.equal(completed[0].body.bucket, 'sandbox');
    assert.match(completed[0].body.location, /^http:\/\//);
    assert.equal(routes.filter((r) => r.path === '/params').length, 0, 'no PostObject');
    await context.close();
  });

  test(`${bundle.name}: pause after a part, then resume: Uppy lists the parts OSS has and sends the rest`, { timeout: 150_000 }, async () => {
    const file = fileOf('long.mp4', 'video/mp4', 16 * MiB); // 5 + 5 + 5 + 1 MiB
    const { page, context, routes, partPuts, settled } = await openUppy('carol', { partDelayMs: 1500 });
    await addAndUpload(page, file);
    await partsDone(page, 1);
    await page.click('#uppy-dashboard button[data-cy=togglePauseResume][aria-label=Pause]');
    await page.waitForSelector('#uppy-status[data-state=paused]');
    await settled();
    const created = routes.find((r) => r.method === 'POST' && r.path === '/multipart');
    assert.ok(created, 'the upload was created');
    const { key } = created.body;
    const ossUploadId = partPuts[0].uploadId;

    // Paused: no part is sent, the object does not exist, and OSS keeps the
    // parts already sent.
    const putsAtPause = partPuts.length;
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(partPuts.length, putsAtPause, 'no part PUT while paused');
    await page.screenshot({ path: path.join(artifacts, `uppy-${bundle.slug}-paused.png`), fullPage: true });
    await assert.rejects(reader().head(key), (err) => err.status === 404, 'no object while paused');
    const keptParts = await ossParts(key, ossUploadId);
    assert.ok(keptParts.includes(1), `OSS kept part 1 (has ${keptParts})`);
    assert.ok(keptParts.length < 4, 'not every part was sent before the pause');

    const routesAtResume = routes.length;
    await page.click('#uppy-dashboard button[data-cy=togglePauseResume][aria-label=Resume]');
    assert.equal(await outcome(page, 'resumed'), 'ok', await page.textContent('#uppy-error'));
    await settled();
    await expectUploaded(page, file, { user: 'carol', method: 'multipart', parts: 4 });

    // Resuming listed the parts and did not send those OSS had again.
    const after = routes.slice(routesAtResume);
    const listed = after.filter((r) => r.method === 'GET' && /^\/multipart\/[^/]+$/.test(r.path));
    assert.equal(listed.length, 1, 'Uppy listed the parts on resume');
    assert.equal(listed[0].status, 200);
    assert.deepEqual(listed[0].body.map((p) => Number(p.PartNumber)).sort(), keptParts.sort());
    const resent = partPuts.slice(putsAtPause).map((p) => p.partNumber);
    for (const n of keptParts) assert.ok(!resent.includes(n), `part ${n} was not sent again`);
    assert.deepEqual([...new Set([...keptParts, ...resent])].sort(), [1, 2, 3, 4]);
    await context.close();
  });

  test(`${bundle.name}: over max_size: PostObject refused by OSS, multipart aborted at complete; nothing left`, { timeout: 150_000 }, async () => {
    const keysBefore = await storedKeys();
    const callsBefore = (await recordedCallbacks()).length;

    // PostObject: the policy's content-length-range refuses it.
    {
      const file = fileOf('big.png', 'image/png', 21 * MiB);
      const { page, context, routes, settled } = await openUppy('dave');
      await page.fill('#uppy-threshold', '100'); // no multipart below 100 MiB
      await addAndUpload(page, file);
      assert.equal(await outcome(page, 'too-large-postobject'), 'error');
      await settled();
      const message = await page.textContent('#uppy-error');
      assert.match(message, /OSS refused the upload \(400\): EntityTooLarge/);
      assert.equal(await page.locator('#uppy-results li').count(), 0);
      const params = routes.find((r) => r.path === '/params');
      await expectGone(params.body.fields.key);
      await context.close();
    }

    // Multipart: every part is accepted, and complete sums them, aborts the
    // upload and answers 413.
    {
      const file = fileOf('big.mp4', 'video/mp4', 21 * MiB);
      const { page, context, routes, partPuts, settled } = await openUppy('dave');
      await addAndUpload(page, file);
      assert.equal(await outcome(page, 'too-large-multipart'), 'error');
      await settled();
      const message = await page.textContent('#uppy-error');
      assert.match(message, /Caddy said: 413 /);
      assert.equal(await page.locator('#uppy-results li').count(), 0);
      const completed = routes.filter((r) => r.path.endsWith('/complete'));
      assert.equal(completed.length, 1);
      assert.equal(completed[0].status, 413);
      assert.equal(typeof completed[0].body.error, 'string');
      assert.ok(completed[0].body.error.length > 0);
      const created = routes.find((r) => r.method === 'POST' && r.path === '/multipart');
      assert.deepEqual(partPuts.map((p) => p.partNumber), [1, 2, 3, 4, 5]);
      await expectGone(created.body.key, partPuts[0].uploadId);
      await context.close();
    }

    assert.deepEqual(await storedKeys(), keysBefore, 'nothing stored');
    assert.equal((await recordedCallbacks()).length, callsBefore, 'no callback');
  });

  test(`${bundle.name}: a type outside allow_types is refused before anything is sent, on both paths`, { timeout: 120_000 }, async () => {
    const keysBefore = await storedKeys();
    for (const [name, size, route] of [['page.html', 64 * 1024, '/params'], ['site.html', 6 * MiB, '/multipart']]) {
      const { page, context, routes, partPuts, settled } = await openUppy('erin');
      await addAndUpload(page, { name, mimeType: 'text/html', buffer: randomBytes(size) });
      assert.equal(await outcome(page, `refused-type-${route.slice(1)}`), 'error');
      await settled();
      assert.match(await page.textContent('#uppy-error'), /Caddy said: 4\d\d type "text\/html" is not in allow_types/);
      const refused = routes.filter((r) => r.path === route);
      assert.equal(refused.length, 1, `Uppy called ${route} once`);
      assert.ok(refused[0].status >= 400 && refused[0].status < 500, `${route}: ${refused[0].status}`);
      assert.equal(routes.length, 1, 'no other Uppy route');
      assert.equal(partPuts.length, 0, 'no part sent');
      await context.close();
    }
    assert.deepEqual(await storedKeys(), keysBefore, 'nothing stored');
  });

  test(`${bundle.name}: another user's requests on an upload in progress are refused, and the upload goes on`, { timeout: 150_000 }, async () => {
    const file = fileOf('mine.mp4', 'video/mp4', 11 * MiB); // 5 + 5 + 1 MiB
    const { page, context, routes, partPuts, settled } = await openUppy('alice', { partDelayMs: 1200 });
    await addAndUpload(page, file);
    await partsDone(page, 1);
    await settled();
    const created = routes.find((r) => r.method === 'POST' && r.path === '/multipart');
    const { key, uploadId } = created.body;
    const id = encodeURIComponent(uploadId);
    const q = (k) => new URLSearchParams({ key: k });
    const mine = await asUser('alice', 'GET', `/multipart/${id}?${q(key)}`);
    assert.equal(mine.status, 200, `alice lists her own parts: ${mine.text}`);
    const etag = mine.json[0].ETag;

    const forged = [
      ['bob lists alice\'s parts', 'bob', 'GET', `/multipart/${id}?${q(key)}`],
      ['bob signs a part of alice\'s upload', 'bob', 'GET', `/multipart/${id}/2?${q(key)}`],
      ['bob signs a batch of alice\'s parts', 'bob', 'GET', `/multipart/${id}/batch?${q(key)}&partNumbers=2,3`],
      ['bob completes alice\'s upload', 'bob', 'POST', `/multipart/${id}/complete?${q(key)}`, { parts: [{ PartNumber: 1, ETag: etag }] }],
      ['bob aborts alice\'s upload', 'bob', 'DELETE', `/multipart/${id}?${q(key)}`],
      ['a guest aborts alice\'s upload', 'guest', 'DELETE', `/multipart/${id}?${q(key)}`],
      ['bob aborts alice\'s upload id under his own key', 'bob', 'DELETE', `/multipart/${id}?${q(key.replace('uploads/alice/', 'uploads/bob/'))}`],
      ['bob lists alice\'s upload id under his own key', 'bob', 'GET', `/multipart/${id}?${q(key.replace('uploads/alice/', 'uploads/bob/'))}`],
      ['alice aborts her upload id under another key', 'alice', 'DELETE', `/multipart/${id}?${q('uploads/alice/other.mp4')}`],
      ['alice completes her upload id under another key', 'alice', 'POST', `/multipart/${id}/complete?${q('uploads/alice/other.mp4')}`,
        { parts: [{ PartNumber: 1, ETag: etag }] }],
    ];
    for (const [what, user, method, route, body] of forged) {
      const res = await asUser(user, method, route, body);
      assert.equal(res.status, 403, `${what}: ${res.status} ${res.text}`);
      assert.match(res.type, /^application\/json/, `${what}: JSON`);
      assert.equal(typeof res.json?.error, 'string', `${what}: {"error": ...}`);
      assert.ok(res.json.error.length > 0, `${what}: a reason`);
    }

    // alice's upload is untouched: OSS still has it, and Uppy finishes it.
    assert.ok((await ossParts(key, partPuts[0].uploadId)).includes(1), 'the upload is still in OSS, with its first part');
    assert.equal(await outcome(page, 'forged-refused'), 'ok', await page.textContent('#uppy-error'));
    await settled();
    assert.equal(await expectUploaded(page, file, { user: 'alice', method: 'multipart', parts: 3 }), key);
    assert.ok(!(await storedKeys()).some((k) => k === 'uploads/alice/other.mp4' || k.startsWith('uploads/bob/')),
      'nothing stored under the forged keys');
    await context.close();
  });
}
