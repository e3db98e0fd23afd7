// ali-oss (the npm package) under Node against ossemu: every scenario a
// client of OSS direct upload relies on, and the refusals OSS answers with.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OSS from 'ali-oss';
import { startEmulator, request } from '../lib/ossemu.mjs';

const bucket = 'examplebucket';
const ak = 'LTAI5tNodeFidelity';
const sk = 'node-fidelity-secret';
const roleArn = 'acs:ram::1234567890123456:role/uploader';
const prefix = 'user/eric/';
const sessionPolicy = {
  Version: '1',
  Statement: [{
    Effect: 'Allow',
    Action: ['oss:PutObject', 'oss:GetObject', 'oss:ListParts', 'oss:AbortMultipartUpload'],
    Resource: [`acs:oss:*:*:${bucket}/${prefix}*`],
  }],
};

let emu;
before(async () => {
  emu = await startEmulator({ buckets: [bucket], keys: { [ak]: sk }, roles: [roleArn] });
});
after(async () => { await emu?.stop(); });

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

async function stsCredentials() {
  const sts = new OSS.STS({ accessKeyId: ak, accessKeySecret: sk, endpoint: emu.stsEndpoint + '/' });
  const res = await sts.assumeRole(roleArn, sessionPolicy, 3600, 'node-fidelity');
  assert.equal(res.res.status, 200);
  const c = res.credentials;
  assert.match(c.AccessKeyId, /^STS\./);
  assert.ok(c.SecurityToken.length > 100);
  return c;
}

function stsClient(c, extra = {}) {
  return client({ accessKeyId: c.AccessKeyId, accessKeySecret: c.AccessKeySecret, stsToken: c.SecurityToken, ...extra });
}

async function get(key) {
  const res = await client().get(key);
  return res.content;
}

for (const v4 of [false, true]) {
  const label = v4 ? 'V4' : 'V1';

  test(`put with STS credentials (${label})`, async () => {
    const c = await stsCredentials();
    const data = randomBytes(20000);
    const key = `${prefix}put-${label}.bin`;
    const res = await stsClient(c, { authorizationV4: v4 }).put(key, data, { mime: 'application/octet-stream' });
    assert.equal(res.res.status, 200);
    const md5 = createHash('md5').update(data).digest('hex').toUpperCase();
    assert.equal(res.res.headers.etag, `"${md5}"`);
    assert.deepEqual(await get(key), data);
  });

  test(`multipartUpload with STS credentials (${label})`, async () => {
    const c = await stsCredentials();
    const data = randomBytes(350 * 1024);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'alioss-')), 'big.bin');
    writeFileSync(file, data);
    const key = `${prefix}multi-${label}.bin`;
    const parts = [];
    const res = await stsClient(c, { authorizationV4: v4 }).multipartUpload(key, file, {
      partSize: 100 * 1024,
      parallel: 2,
      progress: (p, cpt) => { if (cpt) parts.push(cpt.doneParts.length); },
    });
    assert.equal(res.res.status, 200);
    assert.ok(parts.at(-1) >= 4, `expected at least 4 parts, saw ${parts.at(-1)}`);
    assert.deepEqual(await get(key), data);
  });
}

test('a key outside the STS session policy is refused', async () => {
  const c = await stsCredentials();
  await assert.rejects(stsClient(c).put('user/mallory/x.txt', Buffer.from('x')),
    (err) => err.status === 403 && err.code === 'AccessDenied');
});

// Presigned URLs name the bucket in the host, as browsers use them.
function cnameClient() {
  return client({ endpoint: `http://${bucket}.localhost:${emu.addr.split(':')[1]}`, cname: true });
}

test('signatureUrl: presigned PUT and GET (V1)', async () => {
  const c = cnameClient();
  const key = `${prefix}signed v1+.txt`;
  const putURL = c.signatureUrl(key, { method: 'PUT', expires: 60, 'Content-Type': 'text/plain' });
  let res = await request(putURL, { method: 'PUT', body: 'hello v1', headers: { 'Content-Type': 'text/plain' } });
  assert.equal(res.status, 200, res.body.toString());
  res = await request(c.signatureUrl(key, { expires: 60 }));
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'hello v1');
});

test('signatureUrlV4: presigned PUT and GET', async () => {
  const c = cnameClient();
  const key = `${prefix}signed v4+.txt`;
  const putURL = await c.signatureUrlV4('PUT', 60, { headers: { 'Content-Type': 'text/plain' } }, key);
  let res = await request(putURL, { method: 'PUT', body: 'hello v4', headers: { 'Content-Type': 'text/plain' } });
  assert.equal(res.status, 200, res.body.toString());
  res = await request(await c.signatureUrlV4('GET', 60, {}, key));
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'hello v4');
});

test('an expired presigned URL is refused', async () => {
  const url = cnameClient().signatureUrl(`${prefix}late.txt`, { method: 'PUT', expires: -10 });
  const res = await request(url, { method: 'PUT', body: 'late' });
  assert.equal(res.status, 403);
  assert.match(res.body.toString(), /<Code>AccessDenied<\/Code>/);
  assert.match(res.body.toString(), /Request has expired/);
  await assert.rejects(get(`${prefix}late.txt`), (err) => err.status === 404);
});

test('a wrong secret is refused with SignatureDoesNotMatch', async () => {
  await assert.rejects(client({ accessKeySecret: 'not-the-secret' }).put(`${prefix}x.txt`, Buffer.from('x')),
    (err) => err.status === 403 && err.code === 'SignatureDoesNotMatch');
});

function policyFor(conditions, expiresInMs = 60_000) {
  return { expiration: new Date(Date.now() + expiresInMs).toISOString(), conditions };
}

async function postForm(fields, file, { fileFirst = false } = {}) {
  const form = new FormData();
  if (fileFirst) form.append('file', new Blob([file.data], { type: file.type }), file.name);
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  if (!fileFirst) form.append('file', new Blob([file.data], { type: file.type }), file.name);
  const res = await fetch(`${emu.endpoint}/${bucket}`, { method: 'POST', body: form });
  return { status: res.status, body: await res.text() };
}

function v1Fields(policy, extra = {}) {
  const sig = client().calculatePostSignature(policy);
  return { key: `${prefix}\${filename}`, OSSAccessKeyId: sig.OSSAccessKeyId, policy: sig.policy, Signature: sig.Signature, ...extra };
}

const png = { name: 'photo.png', type: 'image/png', data: randomBytes(2048) };

test('calculatePostSignature: PostObject V1', async () => {
  const policy = policyFor([['starts-with', '$key', prefix], ['content-length-range', 1, 4096]]);
  const res = await postForm(v1Fields(policy, { success_action_status: '201' }), png);
  assert.equal(res.status, 201, res.body);
  assert.match(res.body, /<Key>user\/eric\/photo.png<\/Key>/);
  assert.deepEqual(await get(`${prefix}photo.png`), png.data);
});

test('signPostObjectPolicyV4: PostObject V4', async () => {
  const c = client();
  const now = new Date();
  const date = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const credential = `${ak}/${date.slice(0, 8)}/cn-hangzhou/oss/aliyun_v4_request`;
  const policy = policyFor([
    { bucket },
    { 'x-oss-signature-version': 'OSS4-HMAC-SHA256' },
    { 'x-oss-credential': credential },
    { 'x-oss-date': date },
    ['starts-with', '$key', prefix],
    ['in', '$content-type', ['image/png', 'image/jpeg']],
    ['content-length-range', 1, 4096],
  ]);
  const fields = {
    key: `${prefix}v4.png`,
    'Content-Type': 'image/png',
    policy: Buffer.from(JSON.stringify(policy)).toString('base64'),
    'x-oss-signature-version': 'OSS4-HMAC-SHA256',
    'x-oss-credential': credential,
    'x-oss-date': date,
    'x-oss-signature': c.signPostObjectPolicyV4(policy, now),
  };
  const res = await postForm(fields, png);
  assert.equal(res.status, 204, res.body);
  assert.deepEqual(await get(`${prefix}v4.png`), png.data);

  // Outside the "in" list.
  const refused = await postForm({ ...fields, 'Content-Type': 'text/html' }, png);
  assert.equal(refused.status, 403);
  assert.match(refused.body, /Policy Condition failed: \["in", "\$content-type"/);
});

test('a tampered policy is refused with SignatureDoesNotMatch', async () => {
  const policy = policyFor([['starts-with', '$key', prefix]]);
  const fields = v1Fields(policy);
  const other = policyFor([['starts-with', '$key', '']]);
  fields.policy = Buffer.from(JSON.stringify(other)).toString('base64');
  const res = await postForm({ ...fields, key: 'anywhere.png' }, png);
  assert.equal(res.status, 403);
  assert.match(res.body, /<Code>SignatureDoesNotMatch<\/Code>/);
});

test('a file outside content-length-range is refused', async () => {
  const policy = policyFor([['content-length-range', 1, 1000]]);
  const res = await postForm(v1Fields(policy, { key: `${prefix}too-big.png` }), png);
  assert.equal(res.status, 400);
  assert.match(res.body, /<Code>EntityTooLarge<\/Code>/);
  await assert.rejects(get(`${prefix}too-big.png`), (err) => err.status === 404);
});

test('a field after file is not seen', async () => {
  const policy = policyFor([['starts-with', '$key', prefix]]);
  const res = await postForm(v1Fields(policy), png, { fileFirst: true });
  assert.equal(res.status, 400);
  assert.match(res.body, /<Code>InvalidArgument<\/Code>/);
  assert.match(res.body, /must contain the specified 'key'/);
});

test('an expired policy is refused', async () => {
  const policy = policyFor([['starts-with', '$key', prefix]], -1000);
  const res = await postForm(v1Fields(policy), png);
  assert.equal(res.status, 403);
  assert.match(res.body, /Policy expired/);
});
