// Documented ali-oss scenarios against ossemu: upload callbacks on put and
// multipartUpload (V1 and V4), a multipartUpload cancelled and resumed
// from its checkpoint, abortMultipartUpload, signatureUrlV4 with
// additionalHeaders, and STS credentials refreshed after they have
// expired.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import http from 'node:http';
import path from 'node:path';
import OSS from 'ali-oss';
import { startEmulator, request } from '../lib/ossemu.mjs';

const bucket = 'examplebucket';
const ak = 'LTAI5tNodeScenarios';
const sk = 'node-scenarios-secret';
const roleArn = 'acs:ram::1234567890123456:role/uploader';
const prefix = 'user/eric/';
const sessionPolicy = {
  Version: '1',
  Statement: [{
    Effect: 'Allow',
    Action: ['oss:PutObject', 'oss:GetObject'],
    Resource: [`acs:oss:*:*:${bucket}/${prefix}*`],
  }],
};

// A callback server on loopback that records what OSS sends it and answers
// with JSON naming the request.
const callbacks = [];
let callbackServer;
let callbackURL;

let emu;
before(async () => {
  emu = await startEmulator({ buckets: [bucket], keys: { [ak]: sk }, roles: [roleArn] });
  callbackServer = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const n = callbacks.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      const answer = JSON.stringify({ Status: 'OK', callback: n });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(answer) });
      res.end(answer);
    });
  });
  callbackServer.listen(0, '127.0.0.1');
  await once(callbackServer, 'listening');
  callbackURL = `http://127.0.0.1:${callbackServer.address().port}`;
});
after(async () => {
  await emu?.stop();
  if (callbackServer) {
    callbackServer.closeAllConnections();
    await new Promise((resolve) => callbackServer.close(resolve));
  }
});

function client(extra = {}) {
  return new OSS({
    region: 'oss-cn-hangzhou',
    endpoint: emu.endpoint,
    bucket,
    accessKeyId: ak,
    accessKeySecret: sk,
    ...extra,
  });
}

async function get(key) {
  const res = await client().get(key);
  return res.content;
}

function tempFile(data) {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'alioss-scenarios-')), 'upload.bin');
  writeFileSync(file, data);
  return file;
}

// The uploads with a callback: put of a buffer, multipartUpload of a file.
const callbackUploads = [
  { op: 'put', size: 20000, upload: (c, key, data, options) => c.put(key, data, options), operation: 'PutObject' },
  {
    op: 'multipartUpload',
    size: 250 * 1024,
    upload: (c, key, data, options) => c.multipartUpload(key, tempFile(data), { ...options, partSize: 100 * 1024, parallel: 2 }),
    operation: 'CompleteMultipartUpload',
  },
];

for (const v4 of [false, true]) {
  const label = v4 ? 'V4' : 'V1';

  for (const { op, size, upload, operation } of callbackUploads) {
    test(`${op} with a callback (${label})`, async () => {
      const data = randomBytes(size);
      const key = `${prefix}callback ${op}-${label}.bin`;
      const before = callbacks.length;
      const res = await upload(client({ authorizationV4: v4 }), key, data, {
        mime: 'application/pdf',
        callback: {
          url: `${callbackURL}/oss/done?via=${op}`,
          body: 'bucket=${bucket}&object=${object}&size=${size}&etag=${etag}&mimeType=${mimeType}&op=${operation}&user=${x:user}',
          contentType: 'application/x-www-form-urlencoded',
          customValue: { user: 'eric' },
        },
      });
      assert.equal(res.res.status, 200);
      assert.equal(callbacks.length, before + 1, 'one callback per upload');
      const cb = callbacks.at(-1);
      // The uploader gets the callback server's answer.
      assert.deepEqual(res.data, { Status: 'OK', callback: before + 1 });

      assert.equal(cb.method, 'POST');
      assert.equal(cb.url, `/oss/done?via=${op}`);
      assert.equal(cb.headers['content-type'], 'application/x-www-form-urlencoded');
      assert.ok(cb.headers.authorization && cb.headers['x-oss-pub-key-url'], 'the callback is signed');
      const head = await client().head(key);
      const fields = Object.fromEntries(new URLSearchParams(cb.body));
      assert.deepEqual(fields, {
        bucket,
        object: key,
        size: String(size),
        etag: head.res.headers.etag.replaceAll('"', ''),
        mimeType: 'application/pdf',
        op: operation,
        user: 'eric',
      });
      assert.deepEqual(await get(key), data);
    });
  }

  test(`multipartUpload cancelled and resumed from its checkpoint (${label})`, async () => {
    const partSize = 100 * 1024;
    const data = randomBytes(5 * partSize + 777);
    const file = tempFile(data);
    const key = `${prefix}resumed-${label}.bin`;
    const c = client({ authorizationV4: v4 });

    // Sequential parts; cancel once two are done.
    let checkpoint;
    await assert.rejects(c.multipartUpload(key, file, {
      partSize,
      parallel: 1,
      progress: (p, cpt) => {
        if (!cpt) return;
        checkpoint = cpt;
        if (cpt.doneParts.length === 2) c.cancel();
      },
    }), (err) => err.name === 'cancel');
    assert.ok(checkpoint?.uploadId, 'the progress callback got a checkpoint');
    assert.equal(checkpoint.doneParts.length, 2);
    const listed = await c.listParts(key, checkpoint.uploadId);
    assert.deepEqual(listed.parts.map((p) => Number(p.PartNumber)), [1, 2]);
    await assert.rejects(get(key), (err) => err.status === 404, 'nothing stored before completion');

    // Resume: only the missing parts are uploaded, to the same upload.
    const uploadedOnResume = [];
    const res = await c.multipartUpload(key, file, {
      checkpoint,
      partSize,
      parallel: 2,
      progress: (p, cpt) => {
        if (!cpt) return;
        assert.equal(cpt.uploadId, checkpoint.uploadId);
        uploadedOnResume.push(cpt.doneParts.at(-1).number);
      },
    });
    assert.equal(res.res.status, 200);
    assert.deepEqual(uploadedOnResume.sort((a, b) => a - b), [3, 4, 5, 6]);
    assert.deepEqual(await get(key), data);
    assert.match(res.etag, /-6"$/);
  });

  test(`abortMultipartUpload, then listParts fails with NoSuchUpload (${label})`, async () => {
    const c = client({ authorizationV4: v4 });
    const key = `${prefix}aborted-${label}.bin`;
    const init = await c.initMultipartUpload(key);
    const file = tempFile(randomBytes(220 * 1024));
    const parts = [];
    for (const [number, start, end] of [[1, 0, 120 * 1024], [2, 120 * 1024, 220 * 1024]]) {
      const part = await c.uploadPart(key, init.uploadId, number, file, start, end);
      assert.equal(part.res.status, 200);
      parts.push({ number, etag: part.etag });
    }
    assert.deepEqual((await c.listParts(key, init.uploadId)).parts.map((p) => Number(p.PartNumber)), [1, 2]);
    const res = await c.abortMultipartUpload(key, init.uploadId);
    assert.equal(res.res.status, 204);
    await assert.rejects(c.listParts(key, init.uploadId), (err) => err.status === 404 && err.code === 'NoSuchUpload');
    await assert.rejects(c.completeMultipartUpload(key, init.uploadId, parts),
      (err) => err.status === 404 && err.code === 'NoSuchUpload');
    await assert.rejects(get(key), (err) => err.status === 404);
  });
}

test('signatureUrlV4 with additionalHeaders: the URL works only with them as signed', async () => {
  const port = emu.addr.split(':')[1];
  const host = `${bucket}.localhost:${port}`;
  const c = client({ endpoint: `http://${host}`, cname: true });
  const key = `${prefix}additional v4+.txt`;
  const signed = { 'Content-Type': 'text/plain', 'x-app-trace': 'trace-1' };
  // ali-oss signs additional headers from the request it is given, host
  // included; the uploader's HTTP client then sends the same Host.
  const url = await c.signatureUrlV4('PUT', 60, { headers: { ...signed, host } }, key, ['x-app-trace', 'host']);
  assert.equal(new URL(url).searchParams.get('x-oss-additional-headers'), 'host;x-app-trace');

  const cases = [
    { name: 'without x-app-trace', url, headers: { 'Content-Type': 'text/plain' } },
    { name: 'another x-app-trace', url, headers: { ...signed, 'x-app-trace': 'trace-2' } },
    { name: 'another host', url: url.replace(`//${host}`, `//${bucket}.elsewhere.localhost:${port}`), headers: signed },
  ];
  for (const tc of cases) {
    const res = await request(tc.url, { method: 'PUT', body: 'refused', headers: tc.headers });
    assert.equal(res.status, 403, `${tc.name}: ${res.body}`);
    assert.match(res.body.toString(), /<Code>SignatureDoesNotMatch<\/Code>/, tc.name);
  }
  await assert.rejects(get(key), (err) => err.status === 404, 'a refused PUT stored nothing');

  const res = await request(url, { method: 'PUT', body: 'with additional headers', headers: signed });
  assert.equal(res.status, 200, res.body.toString());
  assert.equal((await get(key)).toString(), 'with additional headers');
});

async function assumeRole(sessionName) {
  const sts = new OSS.STS({ accessKeyId: ak, accessKeySecret: sk, endpoint: emu.stsEndpoint + '/' });
  const res = await sts.assumeRole(roleArn, sessionPolicy, 3600, sessionName);
  assert.equal(res.res.status, 200);
  return res.credentials;
}

test('refreshSTSToken: a client whose STS token has expired refreshes it and goes on', async () => {
  const first = await assumeRole('node-refresh-1');
  const refreshed = [];
  const interval = 1000;
  const c = client({
    accessKeyId: first.AccessKeyId,
    accessKeySecret: first.AccessKeySecret,
    stsToken: first.SecurityToken,
    refreshSTSTokenInterval: interval,
    refreshSTSToken: async () => {
      const cred = await assumeRole(`node-refresh-${refreshed.length + 2}`);
      refreshed.push(cred.AccessKeyId);
      return { accessKeyId: cred.AccessKeyId, accessKeySecret: cred.AccessKeySecret, stsToken: cred.SecurityToken };
    },
  });
  const started = Date.now();
  let res = await c.put(`${prefix}refresh-1.txt`, Buffer.from('first token'));
  assert.equal(res.res.status, 200);
  assert.ok(Date.now() - started < interval, 'the first put ran within the refresh interval');
  assert.deepEqual(refreshed, [], 'no refresh before the interval');

  await emu.expireSessions();
  // The first token is really expired now: a client without refresh is refused.
  const stale = client({ accessKeyId: first.AccessKeyId, accessKeySecret: first.AccessKeySecret, stsToken: first.SecurityToken });
  await assert.rejects(stale.put(`${prefix}refresh-stale.txt`, Buffer.from('x')),
    (err) => err.status === 403 && err.code === 'SecurityTokenExpired');

  await new Promise((resolve) => { setTimeout(resolve, interval + 50); });
  res = await c.put(`${prefix}refresh-2.txt`, Buffer.from('refreshed token'));
  assert.equal(res.res.status, 200);
  assert.equal(refreshed.length, 1, 'the put refreshed the token once');
  assert.equal(c.options.accessKeyId, refreshed[0]);
  assert.notEqual(refreshed[0], first.AccessKeyId);
  assert.equal((await get(`${prefix}refresh-2.txt`)).toString(), 'refreshed token');
  await assert.rejects(get(`${prefix}refresh-stale.txt`), (err) => err.status === 404);
});

test('the emulator refuses an unknown command', async () => {
  await assert.rejects(emu.command('drop-buckets'), /unknown command "drop-buckets"/);
  const answer = await emu.expireSessions();
  assert.deepEqual(answer, { ok: true, command: 'expire-sessions' });
});
