// Alibaba's sample PostObject V1 browser clients from the OSS docs'
// "upload directly from clients" pages (en, ja, zh), verbatim in
// ../shared/oss/alibaba-samples/ beside the repository, in Chromium against Caddy + ossemu with the
// configuration docs/alibaba-samples.md documents: policy_path
// /get_post_signature_for_oss_upload, signature_version v1, client_keys
// and form_fields minimal. Each page uploads a file unchanged; the test
// asserts the key and bytes the emulator stored. Without form_fields
// minimal the same pages are refused by the policy's ACL pin (403 Policy
// Condition failed), which is why the setting exists; the en and zh pages
// tell the user "uploaded" all the same.
//
// The callback client (a stand-in for Alibaba's downloadable one, which
// sends the same form plus callback) runs against a site with a callback
// block: the app behind Caddy gets the verified callback and the page
// shows the app's answer, which OSS relays.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { copyFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OSS from 'ali-oss';
import { startEmulator, repoRoot } from '../lib/ossemu.mjs';
import { startCaddy } from '../lib/caddy.mjs';
import { freePort } from '../lib/sandbox.mjs';
import { launchChromium } from '../lib/browser.mjs';

// The pages Caddy serves: Alibaba's three, read unchanged from the shared
// samples beside the repository (../shared/oss/alibaba-samples), and the
// callback client, which is ours (browser/alibaba-samples/), copied into
// one temporary directory.
const samplesDir = path.join(repoRoot, '..', 'shared', 'oss', 'alibaba-samples');
const pagesDir = mkdtempSync(path.join(tmpdir(), 'alibaba-pages-'));
for (const lang of ['en', 'ja', 'zh']) {
  copyFileSync(path.join(samplesDir, `postobject-v1-${lang}.html`), path.join(pagesDir, `postobject-v1-${lang}.html`));
}
copyFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'alibaba-samples', 'postobject-v1-callback.html'),
  path.join(pagesDir, 'postobject-v1-callback.html'));
const bucket = 'examplebucket';
const ak = 'LTAI5tSamplePages';
const sk = 'sample-pages-secret';
const dir = 'user-dir/';

let emu;
let keyDir;
let app; // the site's app: records callbacks, answers JSON
const callbacks = [];
const sites = {};
let browser;

// The documented configuration, plus what this run needs: the emulator's
// endpoint and account, and (callback) the emulator's callback key.
function siteCaddyfile({ port, formFields, callback }) {
  const emuPort = emu.addr.split(':')[1];
  return (tmp) => `{
	admin off
	auto_https off
	persist_config off
	storage file_system ${tmp}/storage
}

http://:${port} {
	bind 127.0.0.1
	oss_upload {
		bucket ${bucket}
		region cn-hangzhou
		endpoint ${emu.endpoint}
		upload_url http://${bucket}.localhost:${emuPort}
		access_key_id ${ak}
		access_key_secret ${sk}
		signature_version v1
		policy_path /get_post_signature_for_oss_upload
		client_keys
		key_prefix ${dir}
${formFields ? '\t\tform_fields minimal\n' : ''}${callback ? `		callback {
			url http://127.0.0.1:${port}/oss/callback
			trusted_key ${path.join(keyDir, 'ossemu.pem')}
		}
` : ''}	}
${callback ? `	reverse_proxy /oss/callback 127.0.0.1:${app.address().port}\n` : ''}	root * ${pagesDir}
	file_server
}
`;
}

async function startSite(opts) {
  const port = await freePort();
  const site = await startCaddy({ caddyfile: siteCaddyfile({ port, ...opts }), readyURL: `http://127.0.0.1:${port}/postobject-v1-en.html` });
  site.pageURL = `http://localhost:${port}`;
  return site;
}

before(async () => {
  emu = await startEmulator({ buckets: [bucket], keys: { [ak]: sk } });
  keyDir = mkdtempSync(path.join(tmpdir(), 'caddyoss-samples-'));
  writeFileSync(path.join(keyDir, 'ossemu.pem'), emu.callbackKeyPEM);
  app = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const fields = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
      callbacks.push({ path: req.url, verified: req.headers['x-oss-callback-verified'], fields });
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ Status: 'OK', saved: fields.object }));
    });
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  [sites.minimal, sites.pinned, sites.callback] = await Promise.all([
    startSite({ formFields: true }),
    startSite({ formFields: false }),
    startSite({ formFields: true, callback: true }),
  ]);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await Promise.all(Object.values(sites).map((s) => s?.stop()));
  app?.close();
  await emu?.stop();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  rmSync(pagesDir, { recursive: true, force: true });
});

function ossClient() {
  return new OSS({ region: 'oss-cn-hangzhou', endpoint: emu.endpoint, bucket, accessKeyId: ak, accessKeySecret: sk });
}

async function storedObject(key) {
  try {
    const res = await ossClient().get(key);
    return res.content;
  } catch (err) {
    if (err.code === 'NoSuchKey' || err.status === 404) return undefined;
    throw err;
  }
}

function fileOf(name, mimeType, size) {
  return { name, mimeType, buffer: randomBytes(size) };
}

// runPage opens a page of a site, picks the file and submits the form as
// a user would, and returns the upload's answer (the POST to the bucket),
// the names of the form fields the page appended, in order (FormData's
// append is observed, the page is not changed), and the alerts it showed.
async function runPage(site, page, file) {
  const tab = await browser.newPage();
  const errors = [];
  tab.on('pageerror', (err) => errors.push(err));
  const dialogs = [];
  tab.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  await tab.addInitScript(() => {
    const append = FormData.prototype.append;
    window.appendedFields = [];
    FormData.prototype.append = function observed(name, ...rest) {
      window.appendedFields.push(name);
      return append.call(this, name, ...rest);
    };
  });
  await tab.goto(`${site.pageURL}/${page}`);
  await tab.setInputFiles('#file', file);
  const upload = tab.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).hostname === `${bucket}.localhost`);
  await tab.click('button[type=submit]');
  const res = await upload;
  const out = { status: res.status(), body: await res.text().catch(() => '') };
  out.sentFields = await tab.evaluate(() => window.appendedFields);
  if (page !== 'postobject-v1-callback.html') {
    await waitFor(() => dialogs.length > 0); // every doc page alerts once answered
  }
  out.dialogs = dialogs;
  out.errors = errors;
  out.tab = tab;
  return out;
}

async function waitFor(cond, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const docPages = [
  { page: 'postobject-v1-en.html', ok: 'Object Uploaded', failed: 'Object Uploaded' },
  { page: 'postobject-v1-ja.html', ok: 'Object uploaded', failed: 'Failed to upload the object. Try to re-upload the object' },
  { page: 'postobject-v1-zh.html', ok: '文件已上传', failed: '文件已上传' },
];

for (const [i, { page, ok }] of docPages.entries()) {
  test(`${page}, verbatim, with form_fields minimal: the file is stored under dir + its name`, async () => {
    const file = fileOf(`sample-${i}.png`, 'image/png', 20 * 1024 + i);
    const run = await runPage(sites.minimal, page, file);
    assert.deepEqual(run.errors, []);
    assert.deepEqual(run.sentFields, ['name', 'policy', 'OSSAccessKeyId', 'success_action_status', 'signature', 'key', 'file'],
      'the sample sends exactly these fields');
    assert.equal(run.status, 200, run.body);
    assert.deepEqual(run.dialogs, [ok]);
    const bytes = await storedObject(`${dir}${file.name}`);
    assert.ok(bytes, 'the object is stored under dir + the file name');
    assert.ok(Buffer.compare(bytes, file.buffer) === 0, 'stored bytes are the file\'s');
    const meta = await ossClient().head(`${dir}${file.name}`);
    assert.equal(meta.res.headers['content-type'], 'image/png');
    const anonymous = await fetch(`${emu.endpoint}/${bucket}/${dir}${file.name}`);
    assert.equal(anonymous.status, 403, 'the object takes the private bucket\'s ACL');
    await run.tab.close();
  });

  test(`${page}, verbatim, without form_fields minimal: refused by the policy's ACL pin`, async () => {
    const file = fileOf(`pinned-${i}.txt`, 'text/plain', 1024);
    const run = await runPage(sites.pinned, page, file);
    assert.equal(run.status, 403, run.body);
    assert.match(run.body, /<Code>AccessDenied<\/Code>/);
    assert.match(run.body, /Invalid according to Policy: Policy Condition failed: \["eq", "\$x-oss-object-acl", "default"\]/);
    assert.equal(await storedObject(`${dir}${file.name}`), undefined, 'nothing is stored');
    // What the page tells its user: the en and zh samples alert "uploaded"
    // whatever OSS answered.
    assert.deepEqual(run.dialogs, [docPages[i].failed]);
    await run.tab.close();
  });
}

test('the callback client with form_fields minimal: the app gets the verified callback, the page shows its answer', async () => {
  const before = callbacks.length;
  const file = fileOf('with-callback.jpg', 'image/jpeg', 30 * 1024);
  const run = await runPage(sites.callback, 'postobject-v1-callback.html', file);
  assert.deepEqual(run.errors, []);
  assert.deepEqual(run.sentFields, ['key', 'policy', 'OSSAccessKeyId', 'success_action_status', 'callback', 'signature', 'name', 'file']);
  assert.equal(run.status, 200, run.body);
  const key = `${dir}${file.name}`;
  assert.deepEqual(JSON.parse(run.body), { Status: 'OK', saved: key }, 'OSS relays the app\'s answer');
  await waitFor(() => callbacks.length > before);
  const got = callbacks.slice(before);
  assert.equal(got.length, 1, 'the app got the callback once');
  assert.equal(got[0].path, '/oss/callback');
  assert.equal(got[0].verified, 'true');
  assert.equal(got[0].fields.object, key);
  assert.equal(got[0].fields.bucket, bucket);
  assert.equal(got[0].fields.size, String(file.buffer.length));
  assert.equal(got[0].fields.mimeType, 'image/jpeg');
  const shown = await run.tab.textContent('#ossfile b');
  assert.equal(shown, `upload to oss success, object name:${key} 回调服务器返回的内容是:${run.body}`);
  const bytes = await storedObject(key);
  assert.ok(bytes && Buffer.compare(bytes, file.buffer) === 0, 'stored bytes are the file\'s');
  await run.tab.close();
});

test('a doc page (no callback field) against the callback site is refused: the callback is pinned', async () => {
  const before = callbacks.length;
  const file = fileOf('no-callback.txt', 'text/plain', 100);
  const run = await runPage(sites.callback, 'postobject-v1-ja.html', file);
  assert.equal(run.status, 403, run.body);
  assert.match(run.body, /Policy Condition failed: \["eq", "\$callback", /);
  assert.equal(await storedObject(`${dir}${file.name}`), undefined);
  assert.equal(callbacks.length, before);
  await run.tab.close();
});
